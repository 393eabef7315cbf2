"""What `secret-rotator bootstrap` creates unless told otherwise: Dime.Scheduler's Exchange connector app.

Apart from service/bootstrap.py so that the command line shows these defaults in its help without
importing bootstrap itself.
"""

DEFAULT_NAME = "Dime.Scheduler"
DEFAULT_REDIRECT_URI = "https://app.dimescheduler.com/signin-microsoft"
