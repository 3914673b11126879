"""The ops commands of ``posventa`` (``db``, ``ingest``, ``tick``, ``nightly``, ``run``, ``serve``,
``doctor``, ``api-key``, ``customer``, ``fake-sendgrid``, ``demo``): driving adapters above the use cases.
They register themselves with the core CLI through the ``posventa.commands`` entry point
(:func:`ops.cli.register`)."""
