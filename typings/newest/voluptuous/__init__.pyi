# On the newest Home Assistant, `import voluptuous` is probatio: homeassistant/__init__.py
# aliases it before anything else imports it, and HA's signatures take probatio's types. The
# newest leg's mypy reads this stub (MYPYPATH=typings/newest), so it checks what runs.
from probatio import *  # noqa: F403 - the whole of what voluptuous resolves to
