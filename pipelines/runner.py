"""Which Beam runner a pipeline gets: the local one without Beam's Prism detour.

Beam 2.77's `DirectRunner` first tries its Prism runner. Prism is a Go binary that Beam downloads from
GitHub on first use; without network access (roots never needs one at run time) the download fails after
a DNS lookup, the job server has already made a `beam-temp*` folder in the system temp folder that its
`stop()` never removes (it is only registered once the server started), and Beam falls back to the
in-process FnApiRunner. So each run cost a failed network call and left an empty folder behind
(about 70 after `make run` and `make test`).

`make_pipeline` goes straight to what the fallback runs: for `DirectRunner` (the default), the FnApiRunner,
built the way the DirectRunner builds it (same options, so `--direct_num_workers` and
`--direct_running_mode` keep working). Any other runner (`--runner=DaskRunner`, `PrismRunner`, Dataflow...)
is Beam's own choice, untouched.

A pipeline also makes a `beam-pipeline-temp*` folder when it is constructed and removes it only at the end of
`run()`; one whose `with` body raises (a step that cannot be built) never runs, and Beam's `__exit__` leaves
the folder behind. `make_pipeline`'s pipelines remove it then too.
"""

from __future__ import annotations

import shutil
from types import TracebackType

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

LOCAL_RUNNERS = frozenset({"directrunner", "direct", "switchingdirectrunner"})


class _Pipeline(beam.Pipeline):
    """A Beam pipeline that also removes its local temp folder when its `with` body raises."""

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        try:
            super().__exit__(exc_type, exc_val, exc_tb)
        finally:
            if exc_type is not None:
                shutil.rmtree(self.local_tempdir, ignore_errors=True)


def make_pipeline(beam_args: list[str] | None) -> beam.Pipeline:
    """A pipeline for `beam_args` (default `--runner=DirectRunner`); use it as a context manager."""
    options = PipelineOptions(beam_args or ["--runner=DirectRunner"])
    name = options.view_as(StandardOptions).runner
    if name is None or str(name).lower() in LOCAL_RUNNERS:
        return _Pipeline(runner=local_runner(options), options=options)
    return _Pipeline(options=options)


def local_runner(options: PipelineOptions) -> beam.runners.PipelineRunner:
    """The FnApiRunner with the provision info SwitchingDirectRunner gives it (the pipeline options)."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    info = fn_runner.ExtendedProvisionInfo(beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=info)
