"""What a check of `credproc doctor` finds, in a type the commands and the identity sources share:
a source's own checks (its endpoint answers, where its keys live) return these."""

# seconds a reachability check may take
TIMEOUT = 5


class Check:
    __slots__ = ("status", "what", "problem", "fix")

    def __init__(self, status, what, problem=None, fix=None):
        self.status = status  # "ok", "fail" or "warn"
        self.what = what
        self.problem = problem
        self.fix = fix


def ok(what):
    return Check("ok", what)


def fail(what, problem, fix=None):
    return Check("fail", what, problem, fix)


def warn(what, problem, fix=None):
    return Check("warn", what, problem, fix)
