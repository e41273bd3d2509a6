import platformdirs
import pytest

from credproc.core import paths


@pytest.mark.parametrize("env", [
    {"HOME": "/home/alice"},
    {"HOME": "/home/alice/", "XDG_CACHE_HOME": "/x/cache", "XDG_DATA_HOME": "/x/data", "XDG_CONFIG_HOME": "/x/cfg"},
])
def test_fast_paths_agree_with_platformdirs(monkeypatch, env):
    for var in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert paths.user_dir("cache") == platformdirs.user_cache_dir("credproc", appauthor=False)
    assert paths.user_dir("data") == platformdirs.user_data_dir("credproc", appauthor=False)
    assert paths.user_dir("config") == platformdirs.user_config_dir("credproc", appauthor=False)


def test_a_relative_or_empty_xdg_variable_is_ignored_as_the_xdg_spec_says(monkeypatch):
    # Newer platformdirs agree; platformdirs 4.4 (the last for Python 3.9) would use the relative
    # path. credproc's full and fast paths both follow the spec on every version.
    for var in ("XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", "/home/alice")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("XDG_DATA_HOME", "")
    assert paths.user_dir("cache") == "/home/alice/.cache/credproc"
    assert paths.user_dir("data") == "/home/alice/.local/share/credproc"
    assert paths.user_dir("config") == "/home/alice/.config/credproc"


def test_config_file_precedence(monkeypatch):
    monkeypatch.setenv("CREDPROC_CONFIG", "/env.toml")
    assert paths.config_file("/flag.toml") == "/flag.toml"
    assert paths.config_file(None) == "/env.toml"
    monkeypatch.delenv("CREDPROC_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/x")
    assert paths.config_file(None) == "/x/credproc/config.toml"


def test_the_key_is_not_in_the_cache_dir(monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "/x/cache")
    monkeypatch.setenv("XDG_DATA_HOME", "/x/data")
    assert paths.key_file() == "/x/data/credproc/cache.key"
    assert paths.cache_dir() == "/x/cache/credproc"
