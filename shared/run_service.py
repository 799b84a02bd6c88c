"""``python -m shared.run_service run <module:Class> --config <file>``: ``nameko`` as every
service is started (``pingxuan up``, ``deploy/docker-entrypoint.sh``), with two process-wide
settings made before the service is imported.

* eventlet warns that it is deprecated on every import; in a service's JSON log that is
  noise, so that one warning is muted.
* The cyclic garbage collector runs its full collection a tenth as often (``GC_THRESHOLDS``).
  A full collection visits every object the process holds, so its cost grows with the heap:
  with the embedded store a voting process holds every vote, and in
  ``benchmarks/voting.py --in-process`` the 21 full collections of a run took 2.9 of its
  17.7 s (``cast_many`` 11.5k → 14.9k votes/s without them). Cycles are still collected,
  later; nothing in a vote's path depends on them being collected sooner (documents and
  requests are freed by reference counting).
"""
import gc
import warnings

#: (young generation, middle, full): Python's defaults are (700, 10, 10).
GC_THRESHOLDS = (2000, 10, 100)

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

if __name__ == "__main__":
    gc.set_threshold(*GC_THRESHOLDS)

    from nameko.cli.main import main

    main()
