"""One module per command. Each defines HELP (one line), DESCRIPTION, EXAMPLES (shown in --help),
add_arguments(parser) and run(args) -> exit code. cli.py registers them in this order."""

NAMES = ["init", "import", "login", "status", "logout", "export", "exec", "serve", "console", "doctor", "setup",  # not an idp type: "login" is the command
         "keys",
         "sso",  # not an idp type
         "completion"]
MODULES = {"exec": "exec_cmd", "import": "import_cmd", "init": "init_cmd"}  # names that would shadow a builtin or keyword


def load(name):
    import importlib

    return importlib.import_module(f"{__name__}.{MODULES.get(name, name)}")
