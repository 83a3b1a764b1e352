"""Run by tests/helpers.run_cli_batch in a fresh interpreter: several ``dd-harness`` commands
(JSON list of argv lists on stdin), one after the other, through the real ``main()``; prints
``[[exit status, stdout, stderr], ...]`` as JSON."""

import contextlib
import io
import json
import sys
import traceback

from mct_plugin.harness.cli import main

results = []
for argv in json.load(sys.stdin):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except BaseException:
            traceback.print_exc(file=err)
            code = 1
    results.append([code, out.getvalue(), err.getvalue()])
json.dump(results, sys.__stdout__)
