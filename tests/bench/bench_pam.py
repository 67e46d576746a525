#!/usr/bin/python3
"""Benchmark: one whole PAM authentication with a correct code, pam_twofactor.so + twofactord
against pam_google_authenticator.so, through the same real libpam (pamtester under
pam_wrapper), alternating runs.

    sudo /usr/bin/python3 tests/bench/bench_pam.py [--runs 30] [--no-room] [--group-rule]

Each run is one `pamtester SERVICE USER authenticate` process with a correct code on stdin,
timed from spawn to exit; so both figures include the same process start, libpam and
pam_wrapper cost, shown on its own by a third stack (`pam_permit.so` only).

google-authenticator is set up to do what ours does: refuse a spent code (`-d`,
disallow-reuse) and limit attempts (`-r 3 -R 30`), so it rewrites its state file at every
login as ours does (its write: temp file, fsync, rename). Neither accepts a spent code, so
every run needs a user nobody logged in as. All of them are prepared before the timed part,
so no run follows the work of setting it up:
* ours: a new user, enrolled on the real daemon (private bus); the code for its next step
  comes from oathtool;
* google-authenticator: for the same user, a secret file made with
  `google-authenticator -t -d -r 3 -R 30 -w 3 -f -Q NONE -q -e 5 -s FILE`, read through
  `secret=DIR/${USER}`; its code comes from oathtool with the file's first line.
The three stacks take turns in a rotating order. After the runs, both modules are shown a
spent code and must refuse it, and every google-authenticator file must hold the step it
accepted (so it did write its state).
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

from conftest import Bus, Daemon, Users, hold_kept_room, oathtool  # noqa: E402
from pam_harness import Enrolled, module_line, pamtester, write_service  # noqa: E402

OURS, GOOGLE, FLOOR = "bench-twofactor", "bench-google-authenticator", "bench-permit"


def percentile(values, fraction):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def google_secret(path):
    subprocess.run(["google-authenticator", "-t", "-d", "-r", "3", "-R", "30", "-w", "3", "-f",
                    "-Q", "NONE", "-q", "-e", "5", "-s", str(path)], check=True,
                   stdout=subprocess.DEVNULL)
    return path.read_text().splitlines()[0].strip()


def timed(pam_dir, service, user, code, expect_ok=True):
    result = pamtester(pam_dir, service, user, [code] if code else [])
    if result.ok != expect_ok:
        raise RuntimeError(f"{service}: unexpected result for {user}: {result}")
    return result.elapsed * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--no-room", action="store_true",
                        help="first fill the daemon's room for kept connections (64 other "
                             "root connections that asked for a plan), so every login opens a "
                             "bus connection per call instead of keeping one through the prompt")
    parser.add_argument("--group-rule", action="store_true",
                        help="give the daemon a group rule, so every login also looks up the "
                             "user's groups (without one it needs only whether the user exists)")
    options = parser.parse_args()

    work = pathlib.Path(tempfile.mkdtemp(prefix="twofactor-bench-"))
    work.chmod(0o755)
    users = Users()
    bus = daemon = None
    try:
        bus = Bus(work / "bus")
        config = ('[policy]\ngroups = { tfbench-staff = "required" }\n'
                  if options.group_rule else "")
        daemon = Daemon(bus, work / "daemon", config)
        google_dir = work / "google"
        google_dir.mkdir(mode=0o700)
        pam_dir = work / "pam.d"
        write_service(pam_dir, OURS, module_line(bus.address))
        write_service(pam_dir, GOOGLE, "auth required pam_google_authenticator.so "
                                       f"secret={google_dir}/${{USER}} user=root")
        write_service(pam_dir, FLOOR, "auth required pam_permit.so")

        prepared = []
        for _ in range(options.runs):
            user = users.add()
            token = Enrolled(bus.address, user)
            google_file = google_dir / user.name
            prepared.append((user, token, google_file, google_secret(google_file)))

        holders = hold_kept_room(bus.address) if options.no_room else []
        times = {OURS: [], GOOGLE: [], FLOOR: []}
        spent = {}
        for run, (user, token, google_file, google_key) in enumerate(prepared):
            codes = {OURS: token.code(), GOOGLE: oathtool(google_key), FLOOR: None}
            order = [OURS, GOOGLE, FLOOR]
            order = order[run % 3:] + order[:run % 3]
            for service in order:
                times[service].append(timed(pam_dir, service, user.name, codes[service]))
            spent = codes
            if "DISALLOW_REUSE " not in google_file.read_text().replace("DISALLOW_REUSE\n", ""):
                raise RuntimeError(f"google-authenticator did not store the step in {google_file}")

        # Both refuse the code they have just accepted.
        last_user = prepared[-1][0].name
        timed(pam_dir, OURS, last_user, spent[OURS], expect_ok=False)
        timed(pam_dir, GOOGLE, last_user, spent[GOOGLE], expect_ok=False)

        print(f"{options.runs} runs of each stack in rotating order; one pamtester "
              "authentication (spawn to exit), correct code"
              + ("; no room for kept connections" if options.no_room else "")
              + ("; the daemon has a group rule" if options.group_rule else ""))
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
