"""spatial_mllm_ros: spatial question answering over robot camera streams.

The pure library (``core``, ``sampling``, ``synthetic``, ``model``, ``evaluation``) never
imports rclpy.  The ROS layer lives in ``spatial_mllm_ros.ros`` and the rosidl-generated
interfaces in ``spatial_mllm_ros.msg`` / ``spatial_mllm_ros.srv``.

The generated interface modules are installed by ``colcon build`` into the install space;
the hand-written modules are installed next to them.  ``extend_path`` lets a source checkout
and the install space form one package, so ``import spatial_mllm_ros.msg`` works from a
source tree once ``install/setup.bash`` is sourced.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)

__version__ = "0.1.0"
