"""The console identity's own credentials, from the idp's LoginSession.

They live at most 15 minutes, so the usual "never hand out with 15 minutes or less left" cannot
apply: this provider says so through the `min_remaining` / `refresh_left` hook that CachedProvider
and app.credentials read (served with more than 10 minutes left, botocore's mandatory refresh
window; refreshed from 11). A role with `arn` over this idp assumes it from these credentials, and
that AssumeRole's credentials keep the usual rule (the hook is not inherited).
"""

from .protocol import REFRESH_LEFT, SERVE_LEFT


class LoginProvider:
    min_remaining = SERVE_LEFT
    refresh_left = REFRESH_LEFT

    def __init__(self, session):
        self.session = session

    def describe(self):
        return f"Login({self.session.describe()})"

    def retrieve(self):
        return self.session.credentials()
