"""py-spy profiles of a running service, kept as short text summaries (a benchmark helper).

``Profile(pid, path)`` samples the process with ``py-spy record --format raw`` (collapsed
stacks) until ``stop()``; the collapsed file is then summarised into the few frames that
take the most time, by themselves and with what they call, and only the summary is kept:
a collapsed file of a minute's traffic is megabytes, the summary a page.

    .venv/bin/pip install -e ".[bench]"     # py-spy
"""
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

TOP_FRAMES = 25
RATE = 100  # samples per second: enough for a phase of a few seconds, cheap for the target


def py_spy():
    """The py-spy executable next to this interpreter, else on PATH, else ``None``."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Profile:
    """``py-spy record`` of one process while a phase runs."""

    def __init__(self, pid, path, title):
        self.path, self.title = Path(path), title
        self.raw = self.path.with_suffix(".collapsed")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [py_spy(), "record", "--pid", str(pid), "--format", "raw", "--rate", str(RATE),
             "--nonblocking", "--output", str(self.raw)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        """Stop sampling, write the summary, drop the collapsed stacks; returns the summary."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        if not self.raw.exists():
            text = f"{self.title}: py-spy wrote nothing (exit {self.process.returncode})\n"
        else:
            text = summarise(self.raw.read_text(errors="replace"), self.title)
            self.raw.unlink()
        self.path.write_text(text, encoding="utf-8")
        return text


def summarise(collapsed, title, top=TOP_FRAMES):
    """The frames with the most samples: alone (self) and with their callees (total)."""
    own, total, samples = Counter(), Counter(), 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        count = int(count)
        frames = stack.split(";")
        samples += count
        own[_short(frames[-1])] += count
        for frame in {_short(frame) for frame in frames}:  # once per stack: no recursion inflating
            total[frame] += count
    lines = [f"# {title}: {samples} samples at {RATE}/s (py-spy record --format raw, "
             f"--nonblocking; idle eventlet hub included)", "",
             f"## self (top {top})"]
    lines += [f"{100 * n / max(samples, 1):6.1f}%  {frame}" for frame, n in own.most_common(top)]
    lines += ["", f"## total, with callees (top {top})"]
    lines += [f"{100 * n / max(samples, 1):6.1f}%  {frame}" for frame, n in total.most_common(top)]
    return "\n".join(lines) + "\n"


def _short(frame):
    """``func (path/to/site-packages/pkg/mod.py:12)`` → ``func (pkg/mod.py:12)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    else:
        parts = where.split("/")
        where = "/".join(parts[-3:])
    return f"{name} ({where})"
