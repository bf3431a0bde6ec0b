"""What the command line and the Blender layer share, free of ``bpy``.

``settings`` (plain settings -> checked ``SubmitOptions``), ``runner`` (a submission on a
worker thread, cancel, ``Outcome``), ``present`` (results, missing files, errors and
server checks in words and JSON), ``progress_view`` (what the UI shows of a progress
event), ``exit_codes``, ``netpolicy`` (Blender's online access), ``ui_state`` (the
panel's plain rules) and ``user_paths`` (the command line's cache folder).
"""
