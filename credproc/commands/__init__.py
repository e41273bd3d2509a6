"""One module per command. Each defines HELP (one line), DESCRIPTION, EXAMPLES (shown in --help),
add_arguments(parser) and run(args) -> exit code. cli.py registers them in this order."""

NAMES = ["login", "status", "logout", "export", "exec", "serve", "console", "doctor", "setup", "keys",  # not an idp type: "login" is the command
         "sso",  # not an idp type
         "completion"]
MODULES = {"exec": "exec_cmd"}  # `exec` would shadow the builtin as a module name


def load(name):
    import importlib

    return importlib.import_module(f"{__name__}.{MODULES.get(name, name)}")
