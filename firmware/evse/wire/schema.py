"""Validation of every OCPP 1.6-J payload the station receives."""
#
# Covers the CALLs a CSMS may send (core profiles and Security Whitepaper
# ed.3) and the CALLRESULTs answering the station's own requests, as the
# official JSON schemas define them. Failures map to OCPP-J 1.6 section
# 4.2.3 error codes; the description names the field path, e.g.
# "csChargingProfiles.chargingSchedule.chargingRateUnit: bad enum".
#
# All schemas are lines of one string, _S, read in place at check time: no
# dict or tree is built, so importing costs about the text itself.
#
#     line    = "\n" tag [" " field {" " field}]
#     tag     = Action                       a CALL the CSMS may send
#             | "+" Action                   the CALLRESULT for our request
#             | "@" X                        shared object X
#             | "%" X " " value {" " value}  shared enum X
#     field   = name ":" type ["!"]          "!" means required
#     type    = "i"                          integer (bool and float rejected)
#             | "n"                          number, multipleOf 0.1
#             | "s" [maxLength]              string
#             | "t"                          string, format date-time (RFC 3339)
#             | "u"                          string, format uri (scheme checked)
#             | "e" X                        string in enum X
#             | "o" X                        object with the fields of @X
#             | "[" type                     array of type
#
# Every object in these schemas has additionalProperties false, so the
# language cannot say otherwise. No received schema has minItems, maxItems,
# minimum or pattern (the host test checks this), so neither does the
# language, and OccurenceConstraintViolation is never returned.
#
# Choices beyond the schema, all stricter:
# - integer fields want a JSON integer: 5.0 is a TypeConstraintViolation,
#   as in JSON Schema draft 4, which the OCPP 1.6 schemas use.
# - numbers must lie within +/-1e15 (no sane current or power limit is
#   bigger; it also keeps the 0.1 check exact on double floats).
# - date-time needs the full RFC 3339 shape with a zone ("Z" or "+hh:mm");
#   days are 01-31 whatever the month; at most 64 characters.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_PROTO = "ProtocolError"
_TYPE = "TypeConstraintViolation"
_PROP = "PropertyConstraintViolation"
_FORM = "FormationViolation"

_S = (
    # Requests from the CSMS, core profiles.
    b"\nCancelReservation reservationId:i!"
    b"\nChangeAvailability connectorId:i! type:eA!"
    b"\nChangeConfiguration key:s50! value:s500!"
    b"\nClearCache"
    b"\nClearChargingProfile id:i connectorId:i chargingProfilePurpose:eP stackLevel:i"
    b"\nDataTransfer vendorId:s255! messageId:s50 data:s"
    b"\nGetCompositeSchedule connectorId:i! duration:i! chargingRateUnit:eU"
    b"\nGetConfiguration key:[s50"
    b"\nGetDiagnostics location:u! retries:i retryInterval:i startTime:t stopTime:t"
    b"\nGetLocalListVersion"
    b"\nRemoteStartTransaction connectorId:i idTag:s20! chargingProfile:oP"
    b"\nRemoteStopTransaction transactionId:i!"
    b"\nReserveNow connectorId:i! expiryDate:t! idTag:s20! parentIdTag:s20 reservationId:i!"
    b"\nReset type:eB!"
    b"\nSendLocalList listVersion:i! localAuthorizationList:[oL updateType:eD!"
    b"\nSetChargingProfile connectorId:i! csChargingProfiles:oP!"
    b"\nTriggerMessage requestedMessage:eM! connectorId:i"
    b"\nUnlockConnector connectorId:i!"
    b"\nUpdateFirmware location:u! retries:i retrieveDate:t! retryInterval:i"
    # Requests from the CSMS, Security Whitepaper ed.3.
    b"\nCertificateSigned certificateChain:s10000!"
    b"\nDeleteCertificate certificateHashData:oH!"
    b"\nExtendedTriggerMessage requestedMessage:eX! connectorId:i"
    b"\nGetInstalledCertificateIds certificateType:eC!"
    b"\nGetLog log:oG! logType:eL! requestId:i! retries:i retryInterval:i"
    b"\nInstallCertificate certificateType:eC! certificate:s5500!"
    b"\nSignedUpdateFirmware retries:i retryInterval:i requestId:i! firmware:oF!"
    # Results of the station's requests.
    b"\n+Authorize idTagInfo:oT!"
    b"\n+BootNotification status:eN! currentTime:t! interval:i!"
    b"\n+DataTransfer status:eT! data:s"
    b"\n+DiagnosticsStatusNotification"
    b"\n+FirmwareStatusNotification"
    b"\n+Heartbeat currentTime:t!"
    b"\n+MeterValues"
    b"\n+StartTransaction idTagInfo:oT! transactionId:i!"
    b"\n+StatusNotification"
    b"\n+StopTransaction idTagInfo:oT"
    b"\n+LogStatusNotification"
    b"\n+SecurityEventNotification"
    b"\n+SignCertificate status:eG!"
    b"\n+SignedFirmwareStatusNotification"
    # Objects: IdTagInfo, ChargingProfile, ChargingSchedule, its periods,
    # AuthorizationData, CertificateHashData, LogParameters, Firmware.
    b"\n@T expiryDate:t parentIdTag:s20 status:eS!"
    b"\n@P chargingProfileId:i! transactionId:i stackLevel:i!"
    b" chargingProfilePurpose:eP! chargingProfileKind:eK! recurrencyKind:eR"
    b" validFrom:t validTo:t chargingSchedule:oC!"
    b"\n@C duration:i startSchedule:t chargingRateUnit:eU!"
    b" chargingSchedulePeriod:[oQ! minChargingRate:n"
    b"\n@Q startPeriod:i! limit:n! numberPhases:i"
    b"\n@L idTag:s20! idTagInfo:oT"
    b"\n@H hashAlgorithm:eH! issuerNameHash:s128! issuerKeyHash:s128! serialNumber:s40!"
    b"\n@G remoteLocation:s512! oldestTimestamp:t latestTimestamp:t"
    b"\n@F location:s512! retrieveDateTime:t! installDateTime:t"
    b" signingCertificate:s5500! signature:s800!"
    # Enums.
    b"\n%A Inoperative Operative"
    b"\n%B Hard Soft"
    b"\n%C CentralSystemRootCertificate ManufacturerRootCertificate"
    b"\n%D Differential Full"
    b"\n%G Accepted Rejected"
    b"\n%H SHA256 SHA384 SHA512"
    b"\n%K Absolute Recurring Relative"
    b"\n%L DiagnosticsLog SecurityLog"
    b"\n%M BootNotification DiagnosticsStatusNotification FirmwareStatusNotification"
    b" Heartbeat MeterValues StatusNotification"
    b"\n%N Accepted Pending Rejected"
    b"\n%P ChargePointMaxProfile TxDefaultProfile TxProfile"
    b"\n%R Daily Weekly"
    b"\n%S Accepted Blocked Expired Invalid ConcurrentTx"
    b"\n%T Accepted Rejected UnknownMessageId UnknownVendorId"
    b"\n%U A W"
    b"\n%X BootNotification LogStatusNotification FirmwareStatusNotification"
    b" Heartbeat MeterValues SignChargePointCertificate StatusNotification"
    b"\n"
)


def _line(tag):
    # (start, end) of the fields after `tag` (str or bytes) in _S, or None.
    # _S is bytes: on MicroPython a str index or slice at offset n walks n
    # UTF-8 characters (about 80 k Cortex-M instructions at the end of _S),
    # a bytes one does not.
    key = b"\n" + (tag.encode() if type(tag) is str else tag)
    k = _S.find(key)
    while k >= 0:
        i = k + len(key)
        if _S.startswith(b"\n", i):
            return i, i
        if _S.startswith(b" ", i):
            return i + 1, _S.find(b"\n", i)
        k = _S.find(key, i)
    return None


def known_call(action: str) -> bool:
    """True if `action` is a request a CSMS may send to the station."""
    return type(action) is str and action.isalpha() and _line(action) is not None


def check_call(action: str, payload: "Any") -> "tuple[str, str] | None":
    """Validate a CALL payload from the CSMS.

    None if valid, else (error_code, description) for a CALLERROR. An
    unknown action gives NotImplemented (OCPP-J 1.6 section 4.2.3).
    """
    if not known_call(action):
        return "NotImplemented", "unknown action"
    return _top(_line(action), payload)


def check_item(obj: str, path: str, v: "Any") -> "tuple[str, str] | None":
    """Validate one element of an array of shared objects (@obj: "L" an
    AuthorizationData, "Q" a ChargingSchedulePeriod) read on its own from
    a streamed frame; the description starts with `path`."""
    if type(v) is not dict:
        return _TYPE, path + ": not an object"
    r = _line("@" + obj)
    e = _obj(r[0], r[1], v)
    return None if e is None else (e[0], path + "." + e[1])


def has_result(action: str) -> bool:
    """True when the answer to our request `action` has a schema row."""
    return type(action) is str and action.isalpha() and _line("+" + action) is not None


def check_result(action: str, payload: "Any") -> "tuple[str, str] | None":
    """Validate the CALLRESULT payload answering our request `action`.

    None if valid, else (error_code, description). Raises ValueError for
    an action the station never sends (our misuse, not the peer's).
    """
    r = _line("+" + action) if type(action) is str and action.isalpha() else None
    if r is None:
        raise ValueError("no schema for result of " + repr(action))
    return _top(r, payload)


def _top(r, payload):
    if type(payload) is not dict:
        return _FORM, "payload: not an object"
    return _obj(r[0], r[1], payload)


# line start -> its parsed fields, for the few lines in use (at most 6)
_MEMO = {}  # type: dict[int, list[tuple[str, int, int, bool]]]


def _fields(i, end):
    # [(name, type start, type end, required)] of the fields in _S[i:end],
    # parsed once: an array of objects (schedule periods, list entries)
    # makes no field-name strings per element.
    f = _MEMO.get(i)
    if f is None:
        f = []
        k = i
        for w in _S[i:end].split(b" ") if i < end else ():
            c = w.find(b":")
            req = w.endswith(b"!")
            f.append((w[:c].decode(), k + c + 1, k + len(w) - req, req))
            k += len(w) + 1
        if len(_MEMO) > 5:
            _MEMO.clear()
        _MEMO[i] = f
    return f


def _obj(i, end, d):
    # Check dict `d` against the fields in _S[i:end], in that order, so the
    # first error found is the same on every port.
    start = i
    seen = 0
    for name, p, q, req in _fields(i, end):
        if name in d:
            seen += 1
            e = _val(p, q, d[name])
            if e:
                return e[0], name + e[1]
        elif req:
            return _PROTO, name + ": required"
    if seen == len(d):
        return None
    # Some key is not in the schema: name the smallest, so the answer does
    # not depend on dict order (MicroPython dicts are unordered).
    bad = None
    for k in d:
        k = str(k)
        if not _has(start, end, k) and (bad is None or k < bad):
            bad = k
    return _FORM, str(bad) + ": unknown property"


def _has(start, end, name):
    # Is `name` a field name in _S[start:end]?
    if " " in name or ":" in name:
        return False
    name = (name + ":").encode()
    k = _S.find(name, start, end)
    while k >= 0 and not _S.startswith(b" ", k - 1) and k != start:
        k = _S.find(name, k + 1, end)
    return k >= 0


def _val(p, end, v):
    # Check value `v` against the type token _S[p:end]. An error's description
    # is the rest of the path after the field name.
    t = chr(_S[p])
    if t == "[":
        if type(v) is not list:
            return _TYPE, ": not an array"
        for k in range(len(v)):
            e = _val(p + 1, end, v[k])
            if e:
                return e[0], "[" + str(k) + "]" + e[1]
        return None
    if t == "o":
        if type(v) is not dict:
            return _TYPE, ": not an object"
        r = _line(b"@" + _S[p + 1:p + 2])
        e = _obj(r[0], r[1], v)
        if e:
            return e[0], "." + e[1]
        return None
    if t == "i":
        if type(v) is not int:  # bool is not int here: type(True) is bool
            return _TYPE, ": not an integer"
        return None
    if t == "n":
        tv = type(v)
        if tv is not int and tv is not float:
            return _TYPE, ": not a number"
        if not -1e15 < v < 1e15:  # also false for NaN
            return _PROP, ": out of range"
        # multipleOf 0.1 read as "at most one decimal": exact for the JSON
        # text "21.4", although 21.4 is 21.399999999999999 as a double.
        if tv is float and float(f"{v:.1f}") != v:
            return _PROP, ": not a multiple of 0.1"
        return None
    if type(v) is not str:
        return _TYPE, ": not a string"
    if t == "s":
        if end > p + 1 and len(v) > int(_S[p + 1:end].decode()):
            return _PROP, ": too long"
    elif t == "e":
        if not _enum(_line(b"%" + _S[p + 1:p + 2]), v):
            return _PROP, ": bad enum"
    elif t == "t":
        if not _datetime(v):
            return _PROP, ": bad date-time"
    elif not _uri(v):
        return _PROP, ": bad uri"
    return None


def _enum(r, v):
    # Is `v` one of the space-separated words in _S[r[0]:r[1]]?
    i, end = r
    if not v or " " in v or "\n" in v:
        return False
    v = v.encode()
    n = len(v)
    k = _S.find(v, i, end)
    while k >= 0:
        if (k == i or _S.startswith(b" ", k - 1)) and (
                k + n == end or _S.startswith(b" ", k + n)):
            return True
        k = _S.find(v, k + 1, end)
    return False


def _num(b, i, n, hi):
    # Value of the n ASCII digits at b[i:], or -1 if not digits or > hi.
    x = 0
    for k in range(i, i + n):
        d = b[k] - 48
        if not 0 <= d <= 9:
            return -1
        x = x * 10 + d
    return x if x <= hi else -1


def _datetime(s):
    # RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm).
    if not 20 <= len(s) <= 64:
        return False
    b = s.encode()  # indexing bytes gives ints: no allocation per character
    n = len(b)
    if (b[4] != 45 or b[7] != 45 or b[10] not in b"Tt"  # - - T
            or b[13] != 58 or b[16] != 58):  # : :
        return False
    if (_num(b, 0, 4, 9999) < 0 or _num(b, 5, 2, 12) < 1 or _num(b, 8, 2, 31) < 1
            or _num(b, 11, 2, 23) < 0 or _num(b, 14, 2, 59) < 0
            or _num(b, 17, 2, 60) < 0):  # 60: leap second
        return False
    i = 19
    if b[i] == 46:  # '.' and at least one digit
        i += 1
        while i < n and 48 <= b[i] <= 57:
            i += 1
        if i == 20:
            return False
    if i == n - 1:
        return b[i] in b"Zz"
    return (i == n - 6 and b[i] in b"+-" and b[i + 3] == 58
            and _num(b, i + 1, 2, 23) >= 0 and _num(b, i + 4, 2, 59) >= 0)


def _uri(s):
    # A URI starts with a scheme: a letter, then letters, digits, + - . up to
    # ':' (RFC 3986 section 3.1). The rest is left to the user.
    k = s.find(":")
    if k < 1 or not _alpha(s[0]):
        return False
    for ch in s[1:k]:
        if not (_alpha(ch) or ch in "0123456789+-."):
            return False
    return True


def _alpha(ch):
    return "a" <= ch <= "z" or "A" <= ch <= "Z"

