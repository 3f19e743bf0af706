"""Run one script in the MicroPython VM and under CPython; return both outputs."""
import runpy

import mpvm


def run_both(script, tmp_path, capsys):
    """(VM stdout lines, CPython stdout lines) of `script`."""
    vm = mpvm.run(script).splitlines()
    path = tmp_path / "vm_script.py"
    path.write_text(script)
    capsys.readouterr()
    runpy.run_path(str(path))
    return vm, capsys.readouterr().out.splitlines()
