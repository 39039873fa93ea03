"""pip install of the pure-Python library and command-line tools, outside ROS.

Inside a colcon workspace this package builds with ament_cmake (package.xml, CMakeLists.txt),
which also generates the ROS interfaces; this file serves `pip install .` (see README).
"""

from setuptools import setup

setup()
