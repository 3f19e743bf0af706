// Runs Python code inside the MicroPython WebAssembly VM (32-bit, like the MCUs).
// stdin: {"files": {"/lib/evse/wire/rpc.py": "...", ...}, "code": "..." or ["step", ...], "heap": bytes,
//         "async": true to run the steps with runPythonAsync}
// Steps run as separate runPython calls sharing globals: the VM's gc only
// reclaims garbage between calls, so heap measurements need steps.
// stdout: what the program printed. Exit 1 with the traceback on an exception.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const job = JSON.parse(Buffer.concat(chunks).toString("utf8"));
let out = "", err = "";
const mp = await loadMicroPython({
  heapsize: job.heap || 4 * 1024 * 1024,
  stdout: (s) => { out += s + "\n"; },
  stderr: (s) => { err += s + "\n"; },
  linebuffer: true,
});
for (const [path, src] of Object.entries(job.files || {})) {
  mp.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")));
  // "base64:..." carries binary content (.mpy files).
  mp.FS.writeFile(path, src.startsWith("base64:") ? Buffer.from(src.slice(7), "base64") : src);
}
let rc = 0;
try {
  mp.runPython("import sys\nsys.path.append('/lib')");
  for (const step of Array.isArray(job.code) ? job.code : [job.code]) {
    // "async": the VM's asyncio needs runPythonAsync (no asyncio.run there).
    if (job.async) await mp.runPythonAsync(step); else mp.runPython(step);
  }
} catch (e) {
  err += e.message + "\n";
  rc = 1;
}
// Exit only once the pipes have taken everything (a bare exit cuts at 64 KiB).
process.stderr.write(err, () => process.stdout.write(out, () => process.exit(rc)));
