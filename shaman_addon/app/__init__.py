"""What the command line and the Blender layer share: settings to options, running a
submission on a worker thread, presenting its result, exit codes."""
