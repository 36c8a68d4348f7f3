"""A throwaway PostgreSQL server for the integration tests (Debian's postgresql-15).

PgServer() runs initdb into a fresh temp dir and starts the server with pg_ctl on a free
loopback port; stop() (or the context manager) stops it and removes the dir. PostgreSQL
refuses to run as root, so when the tests run as root (CI does) both commands run as the
unprivileged user `nobody`, in a temp dir that user owns. Authentication is `trust` on
127.0.0.1 only: a password in the DSN is accepted and ignored, which lets tests check that
it is never shown.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

PG_BIN = os.environ.get("PORTICO_PG_BIN", "/usr/lib/postgresql/15/bin")


def available():
    return os.path.exists(os.path.join(PG_BIN, "initdb"))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgServer:
    def __init__(self):
        if not available():
            raise RuntimeError(f"PostgreSQL binaries not found in {PG_BIN} "
                               "(apt-get install postgresql)")
        self.dir = tempfile.mkdtemp(prefix="portico-pg-")
        os.chmod(self.dir, 0o755)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")
        self.port = _free_port()
        self.as_root = os.geteuid() == 0
        if self.as_root:
            import pwd
            pw = pwd.getpwnam("nobody")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self._run([os.path.join(PG_BIN, "initdb"), "-D", self.data, "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"])
        self.start()

    def _run(self, cmd, check=True):
        if self.as_root:
            cmd = ["runuser", "-u", "nobody", "--"] + cmd
        cp = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if check and cp.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{cp.stdout}\n{cp.stderr}\n"
                               f"{self.server_log()}")
        return cp

    def server_log(self):
        try:
            with open(self.log) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def start(self):
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                "-c max_connections=100")
        self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-l", self.log, "-o", opts,
                   "-w", "-t", "60", "start"])

    def stop(self, mode="fast"):
        self._run([os.path.join(PG_BIN, "pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop"],
                  check=False)

    def restart(self):
        self.stop()
        self.start()

    def dsn(self, dbname="postgres", password=None):
        s = f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"
        if password:
            s += f" password={password}"
        return s

    def psql(self, sql, dbname="postgres"):
        """Runs SQL through psql; returns stdout."""
        cp = subprocess.run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-A", "-t", "-v",
                             "ON_ERROR_STOP=1", "-d", self.dsn(dbname), "-c", sql],
                            capture_output=True, text=True, timeout=120)
        if cp.returncode != 0:
            raise RuntimeError(f"psql failed: {cp.stderr}")
        return cp.stdout

    def close(self):
        self.stop("immediate")
        for _ in range(50):
            try:
                shutil.rmtree(self.dir)
                return
            except OSError:
                time.sleep(0.1)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
