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
    "\nCancelReservation reservationId:i!"
    "\nChangeAvailability connectorId:i! type:eA!"
    "\nChangeConfiguration key:s50! value:s500!"
    "\nClearCache"
    "\nClearChargingProfile id:i connectorId:i chargingProfilePurpose:eP stackLevel:i"
    "\nDataTransfer vendorId:s255! messageId:s50 data:s"
    "\nGetCompositeSchedule connectorId:i! duration:i! chargingRateUnit:eU"
    "\nGetConfiguration key:[s50"
    "\nGetDiagnostics location:u! retries:i retryInterval:i startTime:t stopTime:t"
    "\nGetLocalListVersion"
    "\nRemoteStartTransaction connectorId:i idTag:s20! chargingProfile:oP"
    "\nRemoteStopTransaction transactionId:i!"
    "\nReserveNow connectorId:i! expiryDate:t! idTag:s20! parentIdTag:s20 reservationId:i!"
    "\nReset type:eB!"
    "\nSendLocalList listVersion:i! localAuthorizationList:[oL updateType:eD!"
    "\nSetChargingProfile connectorId:i! csChargingProfiles:oP!"
    "\nTriggerMessage requestedMessage:eM! connectorId:i"
    "\nUnlockConnector connectorId:i!"
    "\nUpdateFirmware location:u! retries:i retrieveDate:t! retryInterval:i"
    # Requests from the CSMS, Security Whitepaper ed.3.
    "\nCertificateSigned certificateChain:s10000!"
    "\nDeleteCertificate certificateHashData:oH!"
    "\nExtendedTriggerMessage requestedMessage:eX! connectorId:i"
    "\nGetInstalledCertificateIds certificateType:eC!"
    "\nGetLog log:oG! logType:eL! requestId:i! retries:i retryInterval:i"
    "\nInstallCertificate certificateType:eC! certificate:s5500!"
    "\nSignedUpdateFirmware retries:i retryInterval:i requestId:i! firmware:oF!"
    # Results of the station's requests.
    "\n+Authorize idTagInfo:oT!"
    "\n+BootNotification status:eN! currentTime:t! interval:i!"
    "\n+DataTransfer status:eT! data:s"
    "\n+DiagnosticsStatusNotification"
    "\n+FirmwareStatusNotification"
    "\n+Heartbeat currentTime:t!"
    "\n+MeterValues"
    "\n+StartTransaction idTagInfo:oT! transactionId:i!"
    "\n+StatusNotification"
    "\n+StopTransaction idTagInfo:oT"
    "\n+LogStatusNotification"
    "\n+SecurityEventNotification"
    "\n+SignCertificate status:eG!"
    "\n+SignedFirmwareStatusNotification"
    # Objects: IdTagInfo, ChargingProfile, ChargingSchedule, its periods,
    # AuthorizationData, CertificateHashData, LogParameters, Firmware.
    "\n@T expiryDate:t parentIdTag:s20 status:eS!"
    "\n@P chargingProfileId:i! transactionId:i stackLevel:i!"
    " chargingProfilePurpose:eP! chargingProfileKind:eK! recurrencyKind:eR"
    " validFrom:t validTo:t chargingSchedule:oC!"
    "\n@C duration:i startSchedule:t chargingRateUnit:eU!"
    " chargingSchedulePeriod:[oQ! minChargingRate:n"
    "\n@Q startPeriod:i! limit:n! numberPhases:i"
    "\n@L idTag:s20! idTagInfo:oT"
    "\n@H hashAlgorithm:eH! issuerNameHash:s128! issuerKeyHash:s128! serialNumber:s40!"
    "\n@G remoteLocation:s512! oldestTimestamp:t latestTimestamp:t"
    "\n@F location:s512! retrieveDateTime:t! installDateTime:t"
    " signingCertificate:s5500! signature:s800!"
    # Enums.
    "\n%A Inoperative Operative"
    "\n%B Hard Soft"
    "\n%C CentralSystemRootCertificate ManufacturerRootCertificate"
    "\n%D Differential Full"
    "\n%G Accepted Rejected"
    "\n%H SHA256 SHA384 SHA512"
    "\n%K Absolute Recurring Relative"
    "\n%L DiagnosticsLog SecurityLog"
    "\n%M BootNotification DiagnosticsStatusNotification FirmwareStatusNotification"
    " Heartbeat MeterValues StatusNotification"
    "\n%N Accepted Pending Rejected"
    "\n%P ChargePointMaxProfile TxDefaultProfile TxProfile"
    "\n%R Daily Weekly"
    "\n%S Accepted Blocked Expired Invalid ConcurrentTx"
    "\n%T Accepted Rejected UnknownMessageId UnknownVendorId"
    "\n%U A W"
    "\n%X BootNotification LogStatusNotification FirmwareStatusNotification"
    " Heartbeat MeterValues SignChargePointCertificate StatusNotification"
    "\n"
)


def _line(tag):
    # (start, end) of the fields after `tag` in _S, or None.
    k = _S.find("\n" + tag)
    while k >= 0:
        i = k + 1 + len(tag)
        if _S.startswith("\n", i):
            return i, i
        if _S.startswith(" ", i):
            return i + 1, _S.find("\n", i)
        k = _S.find("\n" + tag, i)
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


def _obj(i, end, d):
    # Check dict `d` against the fields in _S[i:end], in that order, so the
    # first error found is the same on every port.
    start = i
    seen = 0
    while i < end:
        j = _S.find(" ", i, end)
        if j < 0:
            j = end
        c = _S.find(":", i, j)
        req = _S.startswith("!", j - 1)
        name = _S[i:c]
        if name in d:
            seen += 1
            e = _val(c + 1, j - 1 if req else j, d[name])
            if e:
                return e[0], name + e[1]
        elif req:
            return _PROTO, name + ": required"
        i = j + 1
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
    name += ":"
    k = _S.find(name, start, end)
    while k >= 0 and not _S.startswith(" ", k - 1) and k != start:
        k = _S.find(name, k + 1, end)
    return k >= 0


def _val(p, end, v):
    # Check value `v` against the type token _S[p:end]. An error's description
    # is the rest of the path after the field name.
    t = _S[p]
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
        r = _line("@" + _S[p + 1])
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
        if end > p + 1 and len(v) > int(_S[p + 1:end]):
            return _PROP, ": too long"
    elif t == "e":
        if not _enum(_line("%" + _S[p + 1]), v):
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
    n = len(v)
    if not n or " " in v or "\n" in v:
        return False
    k = _S.find(v, i, end)
    while k >= 0:
        if (k == i or _S.startswith(" ", k - 1)) and (
                k + n == end or _S.startswith(" ", k + n)):
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

