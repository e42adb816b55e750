"""Training pipelines: job-side code, run inside a training job's process, not the service's.

Not a layer of the service: nothing in ``domain``, ``service_layer``, ``adapters`` or
``entrypoints`` imports these modules. A job's process
(``python -m driftloop_trainer.entrypoints.job``) imports the entry point that a model's
job spec names, e.g. ``driftloop_trainer.pipelines.sklearn:train`` (the reference pipeline of
the demo model). Those strings live in users' model declarations, so the import paths of
this package are a public contract: keep them stable.

An entry point takes a :class:`~driftloop_trainer.domain.jobs.JobContext` and returns a
:class:`~driftloop_trainer.domain.jobs.TrainingOutput`, or raises
:class:`~driftloop_trainer.domain.jobs.StageFailed` to say in which stage it failed.
"""
