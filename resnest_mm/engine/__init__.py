"""What ``tools/train.py`` and ``tools/test.py`` need beyond mmengine's Runner."""
