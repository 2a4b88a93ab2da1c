"""Everything saejax writes and reads back: run directories and atomic writes (``rundir``),
checkpoints of runs and sweep blocks (``checkpoints``), the record of a run (``run_record``)
and of a sweep (``sweep_record``), exported models (``models``) and TensorBoard events
(``tensorboard``)."""
