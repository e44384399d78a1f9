"""promptq for its users: the Python client (`promptq.client`) and the user commands of the
`promptq` command line (`promptq.cli`).

Nothing in this package imports the server's code (api/, worker/, shared/), so the client can be
installed and used on its own, over HTTP only."""
