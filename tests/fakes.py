"""Fakes at the seams: a provider that counts, a terminal that answers from a script."""

from credproc.core.credentials import Credentials
from credproc.core.errors import LoginRequired


class CountingProvider:
    def __init__(self, clock, lifetime=3600, fail=None):
        self.clock = clock
        self.lifetime = lifetime
        self.calls = 0
        self.fail = fail  # an exception instance to raise instead

    def describe(self):
        return "Counting"

    def retrieve(self):
        self.calls += 1
        if self.fail is not None:
            raise self.fail
        now = int(self.clock())
        return Credentials(f"ASIAFAKE{self.calls:08d}", f"secret{self.calls}", f"token{self.calls}",
                           now + self.lifetime, "111111111111")


class ScriptedTerminal:
    """Answers prompts from a list; records what was asked and said. answers=None: no terminal."""

    def __init__(self, answers=None, login_command="credproc login --role admin"):
        self.answers = None if answers is None else list(answers)
        self.asked = []
        self.said = []
        self.login_command = login_command

    def available(self):
        return self.answers is not None

    def attended(self):
        return self.answers is not None

    def require(self, what):
        if self.answers is None:
            raise LoginRequired(f"{what} is needed and there is no terminal to ask on",
                                hint=f"run in a terminal: {self.login_command}")

    browser_possible = available
    require_browser = require

    def ask(self, prompt, what, secret=False):
        self.require(what)
        self.asked.append(prompt)
        return self.answers.pop(0)

    def say(self, message):
        self.said.append(message)

    notify = say

    def progress(self, text):
        import contextlib

        return contextlib.nullcontext()

    def close(self):
        pass


# The smallest useful config: one iam idp and one role over it (unit tests of the cache and its callers)
IAM_CONFIG = b"""
[idp.corp]
type = "iam"
profile = "p"
[role.admin]
idp = "corp"
arn = "arn:aws:iam::111111111111:role/Admin"
"""
