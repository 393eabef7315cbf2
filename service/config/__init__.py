"""The configuration file (YAML), validated before any network call.

Unknown keys are errors; secrets are references (``{env: NAME}`` or ``{file: PATH}``), never values;
every problem is reported with its key path and a fix, and never with the value that was found.

One module per concern, and this one holds no model: the command line's help, the adapters and the
sink types import the part they use without the whole (nor pydantic, for the help):

- ``fields``: the value types every part uses (durations, GUIDs, https URLs) and the strict base model;
- ``clouds``: the Azure cloud's endpoints and who the rotator is (its identity);
- ``references``: secret references and how they resolve;
- ``policy``: the policy keys, and how `defaults` and a target's own keys merge;
- ``document``: the file's top-level model (`Config`, `Target`, `StateConfig`) and its JSON schema;
- ``problems``: how a validation error is worded (the key path and a fix, never the value);
- ``loading``: reading the file, and the checks pydantic cannot make.
"""

CONFIG_ENV = "SECRET_ROTATOR_CONFIG"
