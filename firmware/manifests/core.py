# Freeze manifest of the core every build has: the hub, the Core profile's
# features (station.CORE), the runtime, and the link, store and wire packages.
package("evse", files=[  # noqa: F821
    "__init__.py", "authcache.py", "authorize.py", "boot.py", "clock.py", "compat.py", "config.py",
    "connector.py", "idtag.py", "jobs.py", "measurands.py", "metervalues.py", "remote.py",
    "runtime.py", "station.py", "timers.py", "timestamp.py", "transaction.py", "txqueue.py",
    "link/__init__.py", "link/backoff.py", "link/cpsocket.py", "link/http.py", "link/sha1.py",
    "link/tls.py", "link/transport.py", "link/url.py", "link/ws.py", "link/wshandshake.py",
    "link/wsconn.py",
    "store/__init__.py", "store/files.py", "store/journal.py", "store/snapshot.py",
    "store/storage.py", "wire/__init__.py", "wire/jsonout.py", "wire/jsonstream.py", "wire/rpc.py",
    "wire/schema.py",
], base_path="..")
