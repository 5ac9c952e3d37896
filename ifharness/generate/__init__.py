"""``ifharness generate``: fresh, seeded instruction-following sets written as ordinary tasks.

Fixed public sets leak into training data; a generated set is drawn anew from the registry
(a base task we author plus constraints with kwargs from each constraint's ``draw=`` ranges),
so a model cannot have seen it, yet the same arguments always give the same bytes.

* ``compose``: 1..K non-conflicting constraints on one of ~100 open-ended writing tasks.
* ``density`` (``density.py``): one long-form task carrying N keyword-inclusion instructions.
* ``render``: the same sample worded as prose, as pseudo-code or as a JSON specification.
* ``io``: the task folder (``<name>.yaml`` + ``<name>.jsonl``) and the ``set_id``.

``GENERATOR_VERSION`` is recorded in every generated task and sample. Bump it whenever the same
arguments would give different output: a change to the drawing scheme, a ``draw=`` range, a
conflict map, ``base_tasks.jsonl``, ``verifiers/common_words.txt`` or a rendering template.
"""

GENERATOR_VERSION = "1"
