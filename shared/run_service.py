"""``python -m shared.run_service run <module:Class> --config <file>``: ``nameko`` without the eventlet notice.

eventlet warns that it is deprecated on every import; in a service's JSON log
that is noise. This is nameko's own command line with that one warning muted.
"""
import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

if __name__ == "__main__":
    from nameko.cli.main import main

    main()
