"""Big records in pieces (issue 18): a StopTransaction with 20 meter values
is journalled through jsonout into the file and parsed back from it, and
the charging profiles are snapshotted a profile at a time; what is read
back equals what went in, on CPython and in the MicroPython VM."""
import json

from vmcheck import run_both

from evse.store.journal import Journal

STOP = {"l": 3, "p": {"transactionId": 7, "meterStop": 20000, "timestamp": "2026-01-01T00:20:00Z",
                      "reason": "Local", "idTag": "ABC", "transactionData": [
                          {"timestamp": "2026-01-01T00:%02d:00Z" % i, "sampledValue": [
                              {"value": str(1000 * i + k), "measurand": m, "unit": u}
                              for k, (m, u) in enumerate((("Energy.Active.Import.Register", "Wh"),
                                                          ("Power.Active.Import", "W"),
                                                          ("Current.Import", "A"), ("Voltage", "V")))]}
                          for i in range(20)]}}

SCRIPT = """
import json
from evse.store.journal import Journal
from evse.store.files import ensure_dir
ensure_dir('/tmp/hp')
j = Journal('/tmp/hp/j')
j.open(False)
rec = %s
seq = j.append_json(2, rec)
small = j.append_json(1, {"l": 0, "p": {"a": "\\u00e9"}})
print(len(j.read(seq)) > 5000, j.load(seq) == rec, j.load(small)["p"]["a"] == "\\u00e9")
print(json.loads(j.read(seq)) == rec)
j2 = Journal('/tmp/hp/j')
print(j2.open(False), j2.load(seq) == rec)
""" % json.dumps(STOP)


def test_big_record_written_and_read_in_pieces_on_both_pythons(tmp_path, capsys):
    vm, cp = run_both(SCRIPT.replace("/tmp/hp", str(tmp_path / "hp")), tmp_path, capsys)
    assert vm == cp == ["True True True", "True", "2 True"]


def test_damaged_big_record_is_refused_not_parsed(tmp_path):
    j = Journal(str(tmp_path / "j"))
    j.open(False)
    seq = j.append_json(2, STOP)
    seg = j._path(j._segs[0])
    with open(seg, "r+b") as f:
        f.seek(3000)
        b = f.read(1)
        f.seek(3000)
        f.write(bytes([b[0] ^ 1]))
    try:
        j.load(seq)
        raise AssertionError("a damaged record was parsed")
    except OSError:
        pass


def test_profiles_snapshot_in_pieces_loads_back_the_same_table():
    from evse.profilestack import ProfileStack
    from evse.timestamp import format_utc

    sc = ProfileStack(max_periods=192)
    for k in (1, 2, 3):
        per = [{"startPeriod": i * 60, "limit": 6 + i % 20} for i in range(192)]
        if k == 3:
            per = [dict(p, numberPhases=1 + i % 3) for i, p in enumerate(per)]
        p = {"chargingProfileId": k, "stackLevel": k - 1, "chargingProfilePurpose": "TxDefaultProfile",
             "chargingProfileKind": "Absolute", "validFrom": format_utc(1795611600),
             "chargingSchedule": {"chargingRateUnit": "A", "startSchedule": format_utc(1795611600),
                                  "chargingSchedulePeriod": per}}
        assert sc.set_profile(0, p, 1795611600) == "Accepted"
    out = []
    sc.write_json(lambda s: out.append(s if isinstance(s, str) else bytes(s).decode()))
    assert max(len(s) for s in out) < 512  # pieces of 64 periods at most, not the text (6 KB)
    back = ProfileStack(max_periods=192)
    back.load(json.loads("".join(out)))
    assert [json.loads(r) for r in back.dump()] == [json.loads(r) for r in sc.dump()]
    assert back.count == 3
