"""One user's state on the server: workspaces keyed by the URL's session id, and setups shared by link."""
