"""``pip install`` of this directory, offline, as the README says, and the installed package used
from outside the repository: a throwaway venv that sees Debian's grpcio and protobuf
(--system-site-packages), a copy of clients/python alone (so the package cannot lean on the rest
of the checkout, and the in-tree build leaves nothing behind), then the installed code called
against the real server, and mypy reading its py.typed hints in a user's file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

from tokenmesh_server import HERE, address

PACKAGE = HERE.parent
# What the README documents, minus the venv's path.
INSTALL = ["-m", "pip", "install", "--no-build-isolation", "--no-index", "--no-cache-dir", "--quiet"]

USER_CODE = """
import asyncio
import tokenmesh_client
from tokenmesh_client import AsyncLimiter, Limiter, Decision

async def main(address: str) -> Decision:
    async with AsyncLimiter(address, deadline_s=5) as limiter:
        return await limiter.consume("big", "installed")

decision = asyncio.run(main(ADDRESS))
with Limiter(ADDRESS, deadline_s=5) as sync:
    again = sync.consume("big", "installed")
print(decision.allowed, decision.source, again.allowed, tokenmesh_client.__file__)
"""


def run(*cmd: str, cwd: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=240)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


class PackageTest(unittest.TestCase):
    def test_pip_installs_offline_and_the_installed_package_works_and_is_typed(self) -> None:
        with tempfile.TemporaryDirectory(prefix="tokenmesh-pip-") as tmp:
            source = Path(tmp) / "tokenmesh-client"
            shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info", "tests"))
            venv = Path(tmp) / "venv"
            run(sys.executable, "-m", "venv", "--system-site-packages", str(venv), cwd=tmp)
            python = str(venv / "bin" / "python")
            run(python, *INSTALL, str(source), cwd=tmp)

            site = Path(
                run(python, "-c", "import tokenmesh_client, os; print(os.path.dirname(tokenmesh_client.__file__))", cwd=tmp).strip()
            )
            self.assertTrue(str(site).startswith(str(venv)), site)
            self.assertTrue((site / "py.typed").is_file())
            self.assertTrue((site.parent / "tokenmesh" / "v1" / "rate_limiter_pb2.pyi").is_file())

            script = Path(tmp) / "user.py"
            script.write_text(USER_CODE.replace("ADDRESS", repr(address())))
            out = run(python, str(script), cwd=tmp).split()
            self.assertEqual(out[:3], ["True", "server", "True"])
            self.assertTrue(out[3].startswith(str(venv)), out)

            # mypy reads the installed hints (PEP 561): a wrong use is reported with the real types.
            wrong = Path(tmp) / "wrong.py"
            wrong.write_text(
                textwrap.dedent(
                    """
                    from tokenmesh_client import Limiter
                    remaining: str = Limiter("127.0.0.1:1").consume("api", "k").remaining
                    """
                )
            )
            mypy = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "mypy",
                    "--python-executable",
                    python,
                    "--cache-dir",
                    str(Path(tmp) / "mypy"),
                    "--no-incremental",
                    str(wrong),
                ],
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=240,
            )
            self.assertEqual(mypy.returncode, 1, mypy.stdout + mypy.stderr)
            self.assertIn('Incompatible types in assignment (expression has type "int", variable has type "str")', mypy.stdout)
            self.assertIn("Found 1 error in 1 file", mypy.stdout)


if __name__ == "__main__":
    unittest.main()
