"""Authorization decisions (OCPP 1.6 sections 3.5, 4.1, 5.x Authorize).

Order: local authorization list, then the authorization cache, then the
CSMS. `LocalPreAuthorize` lets a locally valid tag start without waiting
for the CSMS; offline, `LocalAuthorizeOffline` and
`AllowOfflineTxForUnknownId` decide. The outcome is delivered to
`st.on_authorized(st, cid, id_tag, info, purpose)` (transaction.py).

An Authorize that got no answer (the link dropped or the answer was lost to
a MemoryError) is asked again when the link is back, until ConnectionTimeOut
after the swipe; only then, or when the offline rules accept the card, do
the offline rules decide: a transient fault must not cost the user the swipe.
"""
from evse.authcache import AuthCache
from evse.idtag import fold

_CACHE_CAPACITY = 64


def install(st):
    st.cache = AuthCache(capacity=_CACHE_CAPACITY, persist=st.storage.persist("authcache"))
    st.on_result["Authorize"] = _authorize_result
    st.on_fail["Authorize"] = _authorize_failed
    for c in st.connectors[1:]:
        st.on_timer["aw%d" % c.id] = _wait_over


def lookup(st, id_tag):
    """idTagInfo known locally (list first, then cache), or None."""
    now = st.clock.unix()
    cfg = st.config
    if st.authlist is not None and cfg.get("LocalAuthListEnabled"):
        info = st.authlist.get(id_tag, now)
        if info is not None:
            return info
    if cfg.get("AuthorizationCacheEnabled"):
        return st.cache.get(id_tag, now)
    return None


def in_list(st, id_tag):
    return st.authlist is not None and st.config.get("LocalAuthListEnabled") \
        and st.authlist.get(id_tag, st.clock.unix()) is not None


def remember(st, id_tag, info):
    """Cache an idTagInfo from the CSMS (not for tags of the local list)."""
    if not id_tag or not isinstance(info, dict) or in_list(st, id_tag):
        return
    if st.config.get("AuthorizationCacheEnabled"):
        st.cache.update(id_tag, info, st.clock.unix())
        if st.cache.dirty:
            st.cache.save()


def same_group(st, tag_a, parent_a, tag_b):
    """True if tag_b may stop what tag_a (with parent parent_a) started."""
    if fold(tag_a) == fold(tag_b):
        return True
    if not parent_a:
        return False
    # Only an Accepted tag of the group: a Blocked, Expired or Invalid card
    # with the same parentIdTag stops nothing.
    info = lookup(st, tag_b)
    return info is not None and info.get("status") == "Accepted" \
        and info.get("parentIdTag") is not None and fold(info["parentIdTag"]) == fold(parent_a)


def online(st):
    return st.online and st.registration == "Accepted"


def authorize(st, cid, id_tag, purpose):
    """Start deciding on `id_tag`; the answer goes to st.on_authorized."""
    local = lookup(st, id_tag)
    if online(st):
        if local is not None and local["status"] == "Accepted" and st.config.get("LocalPreAuthorize"):
            return _decide(st, cid, id_tag, local, purpose)
        # A card presented while another Authorize is in flight waits its
        # turn in the outbox: it is decided only after asking, never called
        # Invalid unasked. The same card again (a double swipe) is one ask.
        key = (cid, fold(id_tag), purpose)
        if not _asking(st, key):
            st.send("Authorize", {"idTag": id_tag}, ctx=(cid, id_tag, purpose, None))
        return None
    return _decide(st, cid, id_tag, offline_info(st, local), purpose)


def _asking(st, key):
    def same(p, ctx):
        return ctx is not None and (ctx[0], fold(ctx[1]), ctx[2]) == key
    pend = st.rpc.pending
    return st.queued("Authorize", same) is not None or (
        pend is not None and pend[1] == "Authorize" and same(None, pend[4]))


def offline_info(st, local):
    """idTagInfo to use when the CSMS cannot be asked."""
    if local is not None:
        if local["status"] == "Accepted" and st.config.get("LocalAuthorizeOffline"):
            return local
        return local if local["status"] != "Accepted" else {"status": "Invalid"}
    if st.config.get("AllowOfflineTxForUnknownId"):
        return {"status": "Accepted"}
    return {"status": "Invalid"}


def _decide(st, cid, id_tag, info, purpose):
    if st.on_authorized is not None:
        st.on_authorized(st, cid, id_tag, info, purpose)


def _authorize_result(st, payload, ctx):
    cid, id_tag, purpose = ctx[0], ctx[1], ctx[2]
    if ctx[3] is not None:
        st.timers.cancel("aw%d" % cid)
    info = payload["idTagInfo"]
    remember(st, id_tag, info)
    _decide(st, cid, id_tag, info, purpose)


def _authorize_failed(st, ctx, reason):
    cid, id_tag, purpose = ctx[0], ctx[1], ctx[2]
    if reason in ("link lost", "timeout"):
        # No answer: the CSMS cannot be asked, the offline rules apply (3.5.4)
        # unless they would refuse a card we may still ask about.
        info = offline_info(st, lookup(st, id_tag))
        if info["status"] != "Accepted" and _ask_again(st, ctx):
            return
        if ctx[3] is not None:
            st.timers.cancel("aw%d" % cid)
    else:
        # 3.5.4: offline rules only when offline. A CALLERROR or an invalid
        # answer from a CSMS that is there means: not authorized.
        st.log("warn", "Authorize of %s failed (%s): not authorized" % (id_tag, reason))
        info = {"status": "Invalid"}
    _decide(st, cid, id_tag, info, purpose)


def _ask_again(st, ctx):
    """Queue the Authorize again (it leaves once the link is back); False
    when ConnectionTimeOut since the first failure has passed."""
    cid, id_tag, purpose, again = ctx
    name = "aw%d" % cid
    if again is None:  # the first failure: the wait starts now
        st.timers.start(name, st.now, 1000 * st.config.get("ConnectionTimeOut"))
    elif not st.timers.active(name):
        return False
    st.log("info", "Authorize of %s got no answer: asking again" % id_tag)
    st.send("Authorize", {"idTag": id_tag}, ctx=(cid, id_tag, purpose, True))
    return True


def _wait_over(st, now):
    """ConnectionTimeOut passed and the CSMS was not reached: the offline
    rules decide a card still waiting in the outbox (one in flight is
    decided by its answer or failure)."""
    for item in list(st.outbox):
        ctx = item[2]
        if item[0] == "Authorize" and ctx[3] and not st.timers.active("aw%d" % ctx[0]):
            st.outbox.remove(item)
            _decide(st, ctx[0], ctx[1], offline_info(st, lookup(st, ctx[1])), ctx[2])
