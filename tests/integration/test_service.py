"""examples/systemd/portico.service (docs/OPERATIONS.md): systemd accepts it without a warning
(`systemd-analyze verify`, where systemd is installed) and it keeps the hardening the
operations guide promises."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import BIN, REPO

UNIT = os.path.join(REPO, "examples", "systemd", "portico.service")


def settings():
    """The unit's Key=value lines (continuations joined), as {key: [values]}."""
    with open(UNIT) as f:
        text = re.sub(r"\\\n\s*", " ", f.read())
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2).strip())
    return out


def test_unit_keeps_its_hardening():
    s = settings()
    for key, value in [("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                       ("ReadWritePaths", "/var/lib/portico"), ("CapabilityBoundingSet", ""),
                       ("User", "portico"), ("KillMode", "mixed")]:
        assert s.get(key) == [value], (key, s.get(key))
    assert "PORTICO_DATA=/var/lib/portico" in s["Environment"]
    assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    # The service's options are ones `serve` knows (an unknown one would stop it at start).
    serve = s["ExecStart"][0].split()
    assert serve[:2] == ["/usr/local/bin/portico", "serve"]
    usage = subprocess.run([BIN, "serve", "--help"], capture_output=True, text=True)
    for opt in (a for a in serve[2:] if a.startswith("--")):
        assert opt in usage.stdout + usage.stderr, opt


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    # verify checks that ExecStart's program exists: point it at the built binary.
    unit = tmp_path / "portico.service"
    with open(UNIT) as f:
        unit.write_text(f.read().replace("/usr/local/bin/portico", os.path.abspath(BIN)))
    cp = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                        text=True, timeout=30)
    assert cp.returncode == 0, cp.stdout + cp.stderr
    # Unknown keys and bad values are only warnings to systemd: none may be printed.
    assert "portico.service" not in cp.stdout + cp.stderr, cp.stdout + cp.stderr
