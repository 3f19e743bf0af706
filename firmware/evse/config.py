"""OCPP 1.6 configuration keys: GetConfiguration / ChangeConfiguration.

The Core keys of OCPP 1.6 section 9.1, one line each in the module-level
table `_T`. Every other key belongs to the feature that uses it and is
declared by its install() with add_keys() (a table in the same format) or
add_key(): one owner per key. Keys of features the station lacks are absent
(BlinkRepeat, LightIntensity, ConnectorSwitch3to1PhaseSupported: 1-phase).

Defaults are those of the certified reference station (HS31007D, ORS-1..19).
A value comes from, last wins:
    table default < overrides / seed() (RAM only) < change() (persisted)
Only values that differ from the default live in RAM (one dict) and in the
snapshot, as text.

Choices where the spec is silent:
- GetConfiguration with more keys than GetConfigurationMaxKeys: the first
  GetConfigurationMaxKeys distinct keys are answered, the rest ignored.
- AuthorizationKey is write-only: never in a GetConfiguration answer, not
  even as unknownKey when asked for by name.
- SecurityProfile: without a check registered by the security feature (see
  add_key), only the current value is Accepted; raising it needs
  certificates and a reconnect, lowering it is never allowed (whitepaper).
- No base key needs a reboot; add_key(reboot=True) exists for later keys.
- Key names are CiString (case-insensitive): "heartbeatinterval" matches.
"""
from evse.compat import const

# A row, as _row() returns it: (name, spec, default, lo, hi), spec = type | flags.
# int: lo..hi bounds (hi None: unbounded); bool: allowed values as 0..1;
# string: length lo..hi; csl: lo = member set name (None: any), hi = max
# members (0: the value of key + "MaxLength", if that key exists).
_INT = const(0)
_BOOL = const(1)
_STR = const(2)
_CSL = const(3)
_TYPE = const(3)
_RO = const(4)  # read-only
_WO = const(8)  # write-only: never reported
_BOOT = const(16)  # a change takes effect after a reboot

_KEY_MAX = const(50)  # CiString50 (ChangeConfiguration.req key)
_VALUE_MAX = const(500)  # CiString500 (value)
_DIGITS_MAX = const(10)
_PENDING_MAX = const(8)  # stored values of keys a feature has yet to add

_KINDS = ("int", "bool", "string", "csl")

# Measurands the meter supplies (C-09.1 sampled, C-09.2 clock-aligned).
_SAMPLED = "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC"
_ALIGNED = "Energy.Active.Import.Register"
# 9.1 ConnectorPhaseRotation values (NotApplicable: single phase or DC).
_ROTATIONS = ("NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR")

# The base table, one text line per key: name, type (i int, b bool, s string,
# c csl) + flags (r read-only, w write-only, x reboot), default, lo, hi as
# above; "-" is empty / None. One string costs a third of the RAM of tuples
# (measured in the VM: 2.0 KB against 6.4 KB); rows are parsed on lookup.
# Notes: AuthorizeRemoteTxRequests may be R or RW, we take RW.
# ClockAlignedDataInterval, MeterValueSampleInterval (ORS-4/5) and
# WebSocketPingInterval: 0 = off. HeartbeatInterval 1..10800: ORS-6/7.
# StopTransactionOnEVSideDisconnect both ways: C-06.1/C-06.2.
# UnlockConnectorOnEVSideDisconnect only false: fixed cable (C-10.2).
# StopTransactionMaxMeterValues is not in 9.1 but common (ORS-8).
_T = """
AllowOfflineTxForUnknownId b false 0 1
AuthorizationCacheEnabled b true 0 1
AuthorizeRemoteTxRequests b false 0 1
ClockAlignedDataInterval i 0 0 86400
ConnectionTimeOut i 60 1 3600
ConnectorPhaseRotation c 0.NotApplicable,1.NotApplicable phase 0
ConnectorPhaseRotationMaxLength ir 2 0 -
GetConfigurationMaxKeys ir 20 0 -
HeartbeatInterval i 300 1 10800
LocalAuthorizeOffline b true 0 1
LocalPreAuthorize b false 0 1
MeterValuesAlignedData c Energy.Active.Import.Register aligned 0
MeterValuesAlignedDataMaxLength ir 5 0 -
MeterValuesSampledData c Energy.Active.Import.Register sampled 0
MeterValuesSampledDataMaxLength ir 5 0 -
MeterValueSampleInterval i 60 0 3600
NumberOfConnectors ir 1 0 -
ResetRetries i 3 0 10
StopTransactionMaxMeterValues ir 20 0 -
StopTransactionOnEVSideDisconnect b true 0 1
StopTransactionOnInvalidId b true 0 1
StopTxnAlignedData c - aligned 0
StopTxnAlignedDataMaxLength ir 5 0 -
StopTxnSampledData c - sampled 0
StopTxnSampledDataMaxLength ir 5 0 -
SupportedFeatureProfiles cr Core,FirmwareManagement,LocalAuthListManagement,Reservation,SmartCharging,RemoteTrigger - 0
TransactionMessageAttempts i 3 1 10
TransactionMessageRetryInterval i 60 0 3600
UnlockConnectorOnEVSideDisconnect b false 0 0
WebSocketPingInterval i 120 0 3600
"""


def _line(t, i):
    """The row of the line of table `t` starting at index i."""
    f = t[i:t.find("\n", i)].split(" ")
    spec = "ibsc".find(f[1][0])
    for c in f[1][1:]:
        spec |= _RO if c == "r" else _WO if c == "w" else _BOOT
    d = "" if f[2] == "-" else f[2]
    if spec & _TYPE == _INT:
        d = int(d)
    elif spec & _TYPE == _BOOL:
        d = d == "true"
    lo = None if f[3] == "-" else f[3] if spec & _TYPE == _CSL else int(f[3])
    return (f[0], spec, d, lo, None if f[4] == "-" else int(f[4]))


def _lines(t):
    """Start index of every line of table `t`."""
    i = 1
    while i < len(t):
        yield i
        i = t.find("\n", i) + 1


def _text(v):
    if v is True:
        return "true"
    if v is False:
        return "false"
    return str(v)


def _digits(text):
    """Decimal integer of `text` (ASCII digits only); ValueError otherwise."""
    if not text or len(text) > _DIGITS_MAX:
        raise ValueError(text)
    for c in text:
        if c < "0" or c > "9":
            raise ValueError(text)
    return int(text)


class Config:
    """The configuration key registry.

    persist: object with load() -> dict or None and save(dict), or None.
    overrides: {key: value text} applied over the defaults like seed(); the
    extra keys "sampled" / "aligned" replace the supported measurand lists
    (comma separated), e.g. for a meter without SoC.
    """

    def __init__(self, persist=None, overrides=None):
        self._persist = persist
        self._cur = {}  # changed by ChangeConfiguration: persisted
        self._base = {}  # overrides and seeds: RAM only
        self._sets = None  # member set name -> allowed members text
        self._extra = []  # rows added by features
        self._checks = None  # key -> fn(value) -> None | status
        self._listeners = []
        self._pending = None  # stored values of keys not added yet
        self._tables = [_T]  # the core table, then one per feature (add_keys)
        self.unclaimed = {}  # overrides of keys no installed feature declared (yet)
        if overrides:
            for k in overrides:
                if k == "sampled" or k == "aligned":
                    self._set_members(k, overrides[k])
            for k in overrides:
                if k != "sampled" and k != "aligned":
                    if self.has(k):
                        self._seed_override(k, overrides[k])
                    else:
                        self.unclaimed[k] = overrides[k]
        self._load()

    # ---- reading -----------------------------------------------------
    def has(self, key) -> bool:
        return self._row(key) is not None

    def get(self, key):
        """Typed value (int, bool, str; a CSL as its text). KeyError if unknown."""
        # Fast path without parsing the row: changed or seeded values.
        if key in self._cur:
            return self._cur[key]
        if key in self._base:
            return self._base[key]
        row = self._row(key)
        if row is None:
            raise KeyError(key)
        return self._value(row)

    def get_list(self, key) -> list:
        v = _text(self.get(key))
        return v.split(",") if v else []

    # ---- writing -----------------------------------------------------
    def change(self, key, text) -> str:
        """ChangeConfiguration rules (9.1, 5.3): the status for the .conf."""
        row = self._row(key)
        if row is None:
            return "NotSupported"
        if row[1] & _RO:
            return "Rejected"
        try:
            v = self._parse(row, text, True)
        except ValueError:
            return "Rejected"
        name = row[0]
        old = self._value(row)
        fn = self._checks.get(name) if self._checks else None
        if fn is not None:
            status = fn(v)
            if status:
                return status
        elif name == "SecurityProfile" and v != old:
            return "Rejected"
        done = "RebootRequired" if row[1] & _BOOT else "Accepted"
        if v == old:
            return done
        had = name in self._cur
        prev = self._cur.get(name)
        self._put(row, v)
        try:
            self._save()
        except Exception:  # noqa: BLE001 - flash failure: the change did not happen
            if had:
                self._cur[name] = prev
            else:
                self._cur.pop(name, None)
            return "Rejected"
        for fn in self._listeners:
            fn(name, v)
        return done

    def seed(self, key, text):
        """Set a value for this run, bypassing read-only and bounds (board
        defaults, the BootNotification interval, simulator --set). It replaces
        a persisted value. Type and format are still checked: ValueError."""
        row = self._row(key)
        if row is None:
            raise ValueError("unknown key " + str(key))
        v = self._parse(row, text, False)
        name = row[0]
        self._base[name] = v
        if name in self._cur:
            del self._cur[name]
            try:
                self._save()
            except Exception:  # noqa: BLE001, S110 - RAM is right; the old value may return at boot
                pass

    def on_change(self, fn):
        """fn(key, value) after a ChangeConfiguration changed a value."""
        self._listeners.append(fn)

    def add_keys(self, table, checks=None):
        """Declare a feature's keys: a text table in the format of `_T`;
        checks: {key: fn(value) -> None | status} for ChangeConfiguration.
        Overrides and stored values waiting for these keys now apply; a
        refused override raises ValueError naming the key."""
        self._tables.append(table)
        if checks:
            if self._checks is None:
                self._checks = {}
            self._checks.update(checks)
        for i in _lines(table):
            row = _line(table, i)
            self._claim(row)

    def _seed_override(self, key, text):
        try:
            self.seed(key, text)
        except ValueError as e:
            raise ValueError("%s: refused value %r (%s)" % (key, text, e)) from None

    def _claim(self, row):
        key = row[0]
        for k in list(self.unclaimed):
            if k.lower() == key.lower():
                self._seed_override(key, self.unclaimed.pop(k))
        p = self._pending
        if p and key in p:
            text = p.pop(key)
            if not row[1] & _RO:
                try:
                    self._put(row, self._parse(row, text, True))
                except ValueError:
                    pass

    def add_key(self, key, kind, default, readonly=False, lo=0, hi=None, reboot=False,
                hidden=False, members=None, check=None):
        """Register (or redefine) a key: kind "int" | "bool" | "string" | "csl".
        int: bounds lo..hi; string: length lo..hi; csl: members = allowed
        values (comma separated text, None: any), hi = max members.
        check(value) -> None to accept or a status string, for ChangeConfiguration."""
        if not isinstance(key, str) or not key or len(key) > _KEY_MAX:
            raise ValueError("bad key")
        spec = _KINDS.index(kind) | (_RO if readonly else 0) | (_WO if hidden else 0) | (_BOOT if reboot else 0)
        if kind == "csl":
            if members is not None:
                self._set_members(key, members)
            row = (key, spec, "", key if members is not None else None, hi or 0)
        elif kind == "bool":
            row = (key, spec, False, lo, 1 if hi is None else hi)
        else:
            row = (key, spec, 0 if kind == "int" else "", lo, _VALUE_MAX if hi is None and kind == "string" else hi)
        if isinstance(default, str):
            default = self._parse(row, default, False)
        row = (key, spec, default, row[3], row[4])
        self._extra = [r for r in self._extra if r[0] != key]
        self._extra.append(row)
        if check is not None:
            if self._checks is None:
                self._checks = {}
            self._checks[key] = check
        self._claim(row)

    # ---- OCPP messages -----------------------------------------------
    def get_configuration(self, payload) -> dict:
        """GetConfiguration.conf for a GetConfiguration.req payload (5.8)."""
        keys = payload.get("key") if isinstance(payload, dict) else None
        known = []
        unknown = []
        if not isinstance(keys, list) or not keys:
            redefined = [r[0] for r in self._extra]
            for t in self._tables:
                for i in _lines(t):
                    r = _line(t, i)
                    if not r[1] & _WO and r[0] not in redefined:
                        known.append(self._entry(r))
            for r in self._extra:
                if not r[1] & _WO:
                    known.append(self._entry(r))
        else:
            limit = self.get("GetConfigurationMaxKeys")
            seen = []  # type: list
            for k in keys:
                if not isinstance(k, str):
                    continue
                r = self._row(k)
                item = k if r is None else r
                if item in seen:
                    continue
                if len(seen) >= limit:
                    break
                seen.append(item)
                if r is None:
                    unknown.append(k[:_KEY_MAX])
                elif not r[1] & _WO:
                    known.append(self._entry(r))
        out = {}
        if known:
            out["configurationKey"] = known
        if unknown:
            out["unknownKey"] = unknown
        return out

    def change_configuration(self, payload) -> dict:
        """ChangeConfiguration.conf for a ChangeConfiguration.req payload (5.3)."""
        if not isinstance(payload, dict):
            return {"status": "Rejected"}
        return {"status": self.change(payload.get("key"), payload.get("value"))}

    # ---- internals ---------------------------------------------------
    def _row(self, key):
        # A feature's row wins over the base table (it may redefine a key).
        for r in self._extra:
            if r[0] == key:
                return r
        if not isinstance(key, str) or not key or len(key) > _KEY_MAX or " " in key or "\n" in key:
            return None
        for t in self._tables:
            i = t.find("\n" + key + " ")
            if i >= 0:
                return _line(t, i + 1)
        k = key.lower()  # CiString: compare case-insensitively
        for r in self._extra:
            if r[0].lower() == k:
                return r
        n = len(k)
        for t in self._tables:
            for i in _lines(t):  # compares only names of the same length: no big copies
                if t.find(" ", i) - i == n and t[i:i + n].lower() == k:
                    return _line(t, i)
        return None

    def _value(self, row):
        name = row[0]
        if name in self._cur:
            return self._cur[name]
        if name in self._base:
            return self._base[name]
        return row[2]

    def _entry(self, row):
        return {"key": row[0], "readonly": bool(row[1] & _RO), "value": _text(self._value(row))}

    def _put(self, row, v):
        name = row[0]
        if v == self._base.get(name, row[2]):
            self._cur.pop(name, None)
        else:
            self._cur[name] = v

    def _save(self):
        if self._persist is None:
            return
        d = {}
        for k in self._cur:
            d[k] = _text(self._cur[k])
        if self._pending:
            for k in self._pending:
                d[k] = self._pending[k]
        self._persist.save(d)

    def _load(self):
        if self._persist is None:
            return
        try:
            d = self._persist.load()
        except Exception:  # noqa: BLE001 - a corrupt snapshot means defaults
            d = None
        if not isinstance(d, dict):
            return
        for k in d:
            v = d[k]
            if not isinstance(k, str) or not isinstance(v, str):
                continue
            row = self._row(k)
            if row is None:
                # Maybe a key a feature adds later (add_key): keep a few.
                if self._pending is None:
                    self._pending = {}
                if len(self._pending) < _PENDING_MAX and len(k) <= _KEY_MAX and len(v) <= _VALUE_MAX:
                    self._pending[k] = v
            elif not row[1] & _RO:
                try:
                    self._put(row, self._parse(row, v, True))
                except ValueError:
                    pass

    def _set_members(self, name, text):
        if not isinstance(text, str):
            raise ValueError("members of " + name)  # noqa: TRY004 - one error type for bad overrides
        if self._sets is None:
            self._sets = {}
        self._sets[name] = ",".join([m.strip() for m in text.split(",")])

    def _parse(self, row, text, strict):
        """Typed value of `text` for `row`. ValueError when malformed or, if
        `strict` (ChangeConfiguration), out of bounds."""
        if not isinstance(text, str) or len(text) > _VALUE_MAX:
            raise ValueError("value")
        kind = row[1] & _TYPE
        lo = row[3]
        hi = row[4]
        if kind == _BOOL:
            t = text.lower()
            if t != "true" and t != "false":
                raise ValueError(text)
            v = t == "true"
            if strict and not lo <= int(v) <= hi:
                raise ValueError(text)
            return v
        if kind == _INT:
            v = _digits(text)
            if strict and (v < lo or (hi is not None and v > hi)):
                raise ValueError(text)
            return v
        if kind == _STR:
            if strict and not lo <= len(text) <= hi:
                raise ValueError("length")
            return text
        return self._csl(row, text, strict)

    def _csl(self, row, text, strict):
        items = [m.strip() for m in text.split(",")] if text.strip() else []
        for i in range(len(items)):
            if not items[i] or items[i] in items[:i]:
                raise ValueError("empty or repeated member")
        sets = row[3]
        if sets == "phase":
            self._phases(items, strict)
        elif sets is not None:
            allowed = self._sets.get(sets) if self._sets else None
            if allowed is None:
                allowed = _SAMPLED if sets == "sampled" else _ALIGNED
            allowed = allowed.split(",")
            for m in items:
                if m not in allowed:
                    raise ValueError("not supported: " + m)
        if strict:
            n = row[4]
            if not n:
                r = self._row(row[0] + "MaxLength")
                n = self._value(r) if r is not None else None
            if n is not None and len(items) > n:
                raise ValueError("too many members")
        return ",".join(items)

    def _phases(self, items, strict):
        # 9.1 ConnectorPhaseRotation: "<connectorId>.<rotation>", 0 = grid.
        ids = []
        for m in items:
            i = m.find(".")
            if i < 1 or m[i + 1:] not in _ROTATIONS:
                raise ValueError(m)
            cid = _digits(m[:i])
            if cid in ids or (strict and cid > self.get("NumberOfConnectors")):
                raise ValueError(m)
            ids.append(cid)
