"""Docker helpers shared by the docker tests and `bench/docker_latency.py`.

`ensure_dockerd` uses the daemon that answers `docker info`, or starts `dockerd` (the
caller stops it by the returned process's PID). `build_backend_image` imports, without a
registry, a ~2 MB image from the static busybox: `httpd` serving `/www`, with a CGI script
at `/cgi-bin/who` printing the hostname, Host header, URI and client address, one at
`/cgi-bin/headers` printing the URI and every request header (as CGI's `HTTP_*`
variables, sorted), and `/big.txt`, 16 KiB of text (for compress).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from tests.support.proc import poll

BUSYBOX = "/bin/busybox"
# CRLF after the CGI header: proxynow rejects bare-LF header lines from a backend.
WHO_SCRIPT = """#!/bin/sh
printf "Content-Type: text/plain\\r\\n\\r\\n"
echo "hostname=$(hostname)"
echo "host=$HTTP_HOST"
echo "uri=$REQUEST_URI"
echo "remote=$REMOTE_ADDR"
"""
HEADERS_SCRIPT = """#!/bin/sh
printf "Content-Type: text/plain\\r\\n\\r\\n"
echo "uri=$REQUEST_URI"
env | grep ^HTTP_ | sort
"""
BIG_TEXT = "".join(f"line {i:05d} of a compressible text body\n" for i in range(420))
# `sh` + trap: httpd as PID 1 ignores SIGTERM and every `docker stop` would wait 10 s.
CMD = '["/bin/sh","-c","trap \\"exit 0\\" TERM INT; httpd -f -p ${PORT:-80} -h /www & wait"]'


def docker_answers() -> bool:
    result = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return result.returncode == 0


def ensure_dockerd(log_path: Path) -> subprocess.Popen[bytes] | None:
    """Start dockerd unless one answers; the started process, or None."""
    if docker_answers():
        return None
    return start_dockerd(log_path)


def start_dockerd(log_path: Path) -> subprocess.Popen[bytes]:
    """Start dockerd and wait until it answers. `--live-restore` keeps containers running
    while the daemon restarts, which is what the outage test needs."""
    with log_path.open("ab") as log:
        started = subprocess.Popen(
            ["dockerd", "--live-restore"], stdout=log, stderr=log, stdin=subprocess.DEVNULL
        )
    try:
        poll(docker_answers, 30.0, "dockerd to answer `docker info`")
    except BaseException:
        stop_dockerd(started)
        raise
    return started


def stop_dockerd(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def build_backend_image(tag: str) -> None:
    """Import the busybox httpd image as `tag` (the caller removes it by id)."""
    with tempfile.TemporaryDirectory(prefix="pn-rootfs-") as workdir:
        root = Path(workdir) / "rootfs"
        root.mkdir()
        _make_rootfs(root)
        archive = Path(workdir) / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(root, arcname=".")
        subprocess.run(
            ["docker", "import", "-c", f"CMD {CMD}", "-c", "EXPOSE 80", "-c", "ENV PATH=/bin",
             str(archive), tag],
            check=True, capture_output=True,
        )  # fmt: skip


def _make_rootfs(root: Path) -> None:
    bin_dir = root / "bin"
    bin_dir.mkdir()
    shutil.copy(BUSYBOX, bin_dir / "busybox")
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        if applet != "busybox":
            (bin_dir / applet).symlink_to("busybox")
    (root / "tmp").mkdir()
    (root / "etc").mkdir()
    www = root / "www"
    (www / "cgi-bin").mkdir(parents=True)
    (www / "index.html").write_text("hello from busybox\n")
    (www / "big.txt").write_text(BIG_TEXT)
    for name, script in (("who", WHO_SCRIPT), ("headers", HEADERS_SCRIPT)):
        path = www / "cgi-bin" / name
        path.write_text(script)
        os.chmod(path, 0o755)
