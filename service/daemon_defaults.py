"""What `secret-rotator daemon` uses unless told otherwise.

Apart from service/daemon.py so that the command line shows these defaults in its help without importing
the daemon (and APScheduler), and the daemon takes them without importing the command line.
"""

# Every interface: the kubelet's probes and Prometheus reach the pod on its IP. Who else may connect is
# the NetworkPolicy's business (deploy/); the server itself survives a flood (http_endpoints.Limits).
DEFAULT_LISTEN_HOST = "0.0.0.0"  # noqa: S104 - see above
DEFAULT_LISTEN_PORT = 8080
DEFAULT_LISTEN = f"{DEFAULT_LISTEN_HOST}:{DEFAULT_LISTEN_PORT}"
# The pods' terminationGracePeriodSeconds is 360: a pass gets 300 s, closing down the rest.
DEFAULT_SHUTDOWN_TIMEOUT = 300.0
