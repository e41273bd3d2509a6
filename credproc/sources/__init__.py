"""The identity sources: `[idp.NAME] type = "..."` -> the module that owns everything about it.

Adding a source is one line here plus its package (credproc/sources/<type>/, whose source.py
defines `SOURCE = <an IdentitySource subclass>()`, see base.py), its tests and its README section.
Modules are imported on first use, so a config using one source imports only that one.
"""

import importlib

SOURCES = {
    "iam": "credproc.sources.iam.source",
    "login": "credproc.sources.login.source",
    "cas": "credproc.sources.cas.source",
    "oidc": "credproc.sources.oidc.source",
    "saml": "credproc.sources.saml.source",
    "sso": "credproc.sources.sso.source",
    "process": "credproc.sources.process.source",
}

_loaded = {}


def names():
    """Every registered type name, sorted."""
    return sorted(SOURCES)


def get(type_name):
    """The IdentitySource for a type name; KeyError for an unregistered one (config validation
    admits only registered types, so after parsing this cannot happen)."""
    source = _loaded.get(type_name)
    if source is None:
        source = _loaded[type_name] = importlib.import_module(SOURCES[type_name]).SOURCE
    return source


def source_for(idp):
    """The IdentitySource of a validated idp dict."""
    return get(idp["type"])


def all_sources():
    return [get(name) for name in names()]
