"""Render jobs: the Manager's job types, the settings' values, and the job a submission
sends after its checkout. No ``bpy`` here: Blender evaluates expressions on its main
thread through ``expressions`` with its own context; the command line reads the scene
from the .blend (``scene_blend``).
"""
