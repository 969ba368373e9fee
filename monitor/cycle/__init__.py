"""The stages of one cycle, each a small function or type taking only what it needs:

    gather (gather.py, deploys.py, samples.py, reference.py, logs_traces.py)
      -> detect (detect.py, detect_drift.py, detect_logs_traces.py)
      -> correlate (correlate.py)
      -> plan (plan.py: reads the model's history; the chain is alerts/pipeline.py)
      -> apply (apply.py, messages.py: one transaction)
      -> act (actions.py: rollback, ack, silence; drift_report.py)
    deliver (deliver.py: the outbox sender, on its own schedule)

`monitor.vigil.Vigil.run_cycle` is the one place that calls them in order; the records
they pass live in monitor/types.py.
"""
