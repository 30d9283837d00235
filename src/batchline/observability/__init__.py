"""Metrics and traces the way operators already collect them: observers for an ``Engine``.

- ``batchline.observability.otel.OpenTelemetryObserver`` (the ``otel`` extra,
  opentelemetry-api only; bring the SDK and an exporter): a trace per job execution, a span per
  step and per partition (also on worker processes), chunk spans on request, and the metrics.
- ``batchline.observability.prometheus.PrometheusObserver`` (the ``prometheus`` extra): the same
  metrics through prometheus_client; ``exposition()`` renders a registry for a ``/metrics``
  route; an optional push to a Pushgateway when a job ends.

The metrics mirror Spring Batch's Micrometer names under ``batchline.`` (Prometheus: dots
become underscores, seconds and ``_total`` suffixes added):

========================  =========  =======================  ==============================
name                      kind       attributes               what
========================  =========  =======================  ==============================
batchline.job             histogram  job.name, status         job execution duration (s)
batchline.job.active      gauge      job.name                 job executions running
batchline.step            histogram  job.name, step.name,     step execution duration (s)
                                     status
batchline.step.active     gauge      job.name, step.name      step executions running
batchline.item.read       counter    job.name, step.name      items read (committed chunks)
batchline.item.process    counter    job.name, step.name      items processed: read - process
                                                              skips
batchline.item.write      counter    job.name, step.name      items written
batchline.item.filter     counter    job.name, step.name      items the processor dropped
batchline.item.skip       counter    job.name, step.name,     items skipped (read, process,
                                     phase                    write)
batchline.chunk.write     histogram  job.name, step.name,     writing and committing a chunk
                                     status                   (s), status SUCCESS or FAILURE
========================  =========  =======================  ==============================

Attributes are ``job.name``, ``step.name``, ``status`` and ``phase`` (Prometheus labels
``job_name``, ``step_name``, ...): a bare ``job`` would collide with Prometheus' own target label.

Item counts are taken at each chunk commit, so they equal the step executions' counters and
grow while a step runs; a partition is a step (``step.name`` is the partition's name) and its
manager adds nothing, so nothing is counted twice. Unlike Spring's per-item timers, items are
counted, not timed: a clock read per item would cost more than the work of a small item.

Nothing here is imported by ``import batchline``; each module imports its library on use.
"""
