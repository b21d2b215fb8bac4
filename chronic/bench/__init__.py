"""`chronic bench`: the whole process under load, beside a bare Temporal baseline.

Modules: :mod:`~chronic.bench.baseline` (the bare workflow, workflow-safe),
:mod:`~chronic.bench.baseline_worker` (its worker and no-op activities, a subprocess),
:mod:`~chronic.bench.experts` (the simulated experts and how they learn of offers),
:mod:`~chronic.bench.driver` (batches, latencies, the run), :mod:`~chronic.bench.open_cases`
(``--open N``), :mod:`~chronic.bench.history` (history sizes, the baseline's program),
:mod:`~chronic.bench.processes` (RSS and CPU of the stack's processes),
:mod:`~chronic.bench.people` (synthetic insured persons) and
:mod:`~chronic.bench.figures` (the report).

Kept free of imports: the workflow sandbox imports this package with the baseline workflow.
"""
