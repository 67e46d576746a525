#!/usr/bin/python3
"""Benchmark: one whole PAM authentication with a correct code, pam_twofactor.so + twofactord
against pam_google_authenticator.so, through the same real libpam (pamtester under
pam_wrapper), alternating runs.

    sudo /usr/bin/python3 tests/bench/bench_pam.py [--runs 30]

Each run is one `pamtester SERVICE USER authenticate` process with a correct code on stdin,
timed from spawn to exit; so both figures include the same process start, libpam and
pam_wrapper cost, shown on its own by a third stack (`pam_permit.so` only).

Both modules refuse a spent code (ours always, google-authenticator with -D), so every run
needs a step nobody used. Outside the timed part:
* ours: a new user is made and enrolled for each run (on the real daemon, private bus), and
  its next step's code comes from oathtool;
* google-authenticator: the secret file is made anew for each run with
  `google-authenticator -t -D -f -u -w 3 -Q NONE -q -e 5 -s FILE`, and the code comes from
  oathtool with its secret (the file's first line).
Needs root, release builds of twofactord and pam_twofactor, pamtester, libpam-wrapper,
oathtool and libpam-google-authenticator.
"""
import argparse
import math
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

from conftest import Bus, Daemon, Users, oathtool  # noqa: E402
from pam_harness import Enrolled, module_line, pamtester, write_service  # noqa: E402

OURS, GOOGLE, FLOOR = "bench-twofactor", "bench-google-authenticator", "bench-permit"


def percentile(values, fraction):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def google_secret(path):
    path.unlink(missing_ok=True)
    subprocess.run(["google-authenticator", "-t", "-D", "-f", "-u", "-w", "3", "-Q", "NONE",
                    "-q", "-e", "5", "-s", str(path)], check=True, stdout=subprocess.DEVNULL)
    return path.read_text().splitlines()[0].strip()


def timed(pam_dir, service, user, code):
    result = pamtester(pam_dir, service, user, [code] if code else [])
    if not result.ok:
        raise RuntimeError(f"{service} refused a correct code: {result}")
    return result.elapsed * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    options = parser.parse_args()

    work = pathlib.Path(tempfile.mkdtemp(prefix="twofactor-bench-"))
    work.chmod(0o755)
    users = Users()
    bus = daemon = None
    try:
        bus = Bus(work / "bus")
        daemon = Daemon(bus, work / "daemon", "")
        secret_file = work / "google_authenticator"
        pam_dir = work / "pam.d"
        write_service(pam_dir, OURS, module_line(bus.address))
        write_service(pam_dir, GOOGLE, "auth required pam_google_authenticator.so "
                                       f"secret={secret_file} user=root")
        write_service(pam_dir, FLOOR, "auth required pam_permit.so")

        times = {OURS: [], GOOGLE: [], FLOOR: []}
        for _ in range(options.runs):
            user = users.add()
            token = Enrolled(bus.address, user)
            times[OURS].append(timed(pam_dir, OURS, user.name, token.code()))

            code = oathtool(google_secret(secret_file))
            times[GOOGLE].append(timed(pam_dir, GOOGLE, "root", code))

            times[FLOOR].append(timed(pam_dir, FLOOR, "root", None))

        print(f"{options.runs} alternating runs each; one pamtester authentication "
              "(spawn to exit), correct code")
        print(f"{'stack':32} {'median ms':>10} {'p90 ms':>8}")
        labels = {OURS: "pam_twofactor + twofactord", GOOGLE: "pam_google_authenticator",
                  FLOOR: "pam_permit (process floor)"}
        for service, values in times.items():
            print(f"{labels[service]:32} {statistics.median(values):10.2f} "
                  f"{percentile(values, 0.9):8.2f}")
        ours, google, floor = (statistics.median(times[s]) for s in (OURS, GOOGLE, FLOOR))
        print(f"ratio ours / google-authenticator (median): {ours / google:.2f}")
        if google > floor:
            print(f"ratio above the floor (median - floor): "
                  f"{(ours - floor) / (google - floor):.2f}")
    finally:
        if daemon:
            daemon.stop()
        if bus:
            bus.stop()
        users.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
