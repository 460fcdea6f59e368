"""The SPKT services: intake, dispatch, tkp, notify (faust workers), the projection and the API."""
