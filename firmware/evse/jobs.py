"""Long-running I/O work (downloads, uploads) outside the sans-IO core.

The core cannot await. A feature that needs the network for a while (a
firmware download, a log upload) appends a Job to `st.jobs`; whoever owns
the event loop (evse.runtime, tools/sim.py, a test) takes it from there,
awaits `job.work()` as a task and feeds the outcome back with
`finish(st, job, result, error)`, an input to the core like a received
frame. The feature's `done(st, result, error)` then moves its state on;
the core stays deterministic and unit tests run jobs by hand (or never).

A job is cancelled by setting `job.cancelled`: its work checks the flag
between chunks and stops, and `finish` does not call `done` for it;
`job.ended` tells when its work is over (a feature that reuses what the job
wrote, e.g. a slot, waits for that).
"""


class Job:
    """work: async fn() -> result; done: fn(st, result, error or None)."""

    def __init__(self, name, work, done):
        self.name = name
        self.work = work
        self.done = done
        self.cancelled = False
        self.ended = False  # its work has returned or raised (or was never started)


class Cancelled(Exception):
    """Raised by a job's work when it notices `job.cancelled`."""


def finish(st, job, result, error):
    """Hand a job's outcome to its feature (a bug there is logged, not raised)."""
    if job.cancelled:
        return
    st.now = st.clock.ms()
    try:
        job.done(st, result, error)
    except Exception as e:  # noqa: BLE001 - a feature bug must not stop the loop
        st.log("error", "job " + job.name + ": " + repr(e))


async def run(st, job):
    """Await one job and hand its outcome back to the core."""
    try:
        res, err = await job.work(), None
    except Exception as e:  # noqa: BLE001 - any failure is the job's result
        res, err = None, e
    finally:
        job.ended = True  # also when the task is cancelled
    finish(st, job, res, err)
