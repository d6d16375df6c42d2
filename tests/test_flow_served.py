"""The nightly flow as a served deployment runs it (`stepwise serve`): Prefect's runner sends the
flow to a spawned subprocess as a cloudpickled copy, and that subprocess validates the run's
parameters. Run here without a server: the copy is loaded in a fresh interpreter elsewhere."""

from __future__ import annotations

import subprocess
import sys

import cloudpickle

from flows.nightly import nightly

LOAD_AND_VALIDATE = """
import pickle, sys
flow = pickle.loads(sys.stdin.buffer.read())
print(flow.validate_parameters({"data_dir": "/data", "as_of": "2025-01-02"}))
print(flow.validate_parameters({"data_dir": "/data"}))
"""


def test_a_pickled_copy_of_the_flow_validates_its_parameters_in_another_process(tmp_path):
    copy = cloudpickle.dumps(nightly)
    done = subprocess.run([sys.executable, "-c", LOAD_AND_VALIDATE], input=copy, capture_output=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    as_of, scheduled = done.stdout.decode().splitlines()[-2:]
    assert as_of == "{'data_dir': '/data', 'as_of': datetime.date(2025, 1, 2)}"  # the date parsed, not a string
    assert scheduled == "{'data_dir': '/data', 'as_of': None}"  # what the nightly schedule passes
