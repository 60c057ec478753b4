"""The OCI Distribution registry server (``sampan registry serve``)."""
