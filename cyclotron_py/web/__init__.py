"""`cyclotron serve`: the dashboard (FastAPI app in ``app``, guards in ``security``)."""
