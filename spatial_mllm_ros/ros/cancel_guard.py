"""Cancel requests of ``~/ask_stream`` that reach beyond one goal, refused by default.

A ``CancelGoal`` request (``action_msgs/srv/CancelGoal``) names a goal id and a time stamp;
by the action design, a zero id with a zero stamp cancels **every** goal, a zero id with a
stamp every goal accepted at or before it, and an id with a stamp that goal and every goal
accepted before the stamp. On a shared domain any participant can send one, so one careless
tool would cancel every caller's question. rclpy's :class:`~rclpy.action.ActionServer` hands
its cancel callback one goal handle at a time, never the request, so the callback cannot
tell "cancel goal X" from "cancel all": :class:`GuardedActionServer` looks at the request
first (rclpy's ``ActionServer._execute_cancel_request``, where rclpy takes the request and
asks the goals' handles) and answers a broad one ``ERROR_REJECTED`` with no goal canceled,
unless ``allow_broad`` (parameter ``security.allow_cancel_all``). A cancel of one goal by its
id (stamp zero: what ``rclpy``'s ``ClientGoalHandle.cancel_goal_async`` and ``rclcpp``'s
``async_cancel_goal`` send) goes on to the cancel callback as before.
"""

from __future__ import annotations

from typing import Any

from action_msgs.srv import CancelGoal
from rclpy.action import ActionServer

__all__ = ["GuardedActionServer", "is_broad_cancel"]


def is_broad_cancel(request: Any) -> bool:
    """Whether a ``CancelGoal`` request may cancel goals other than the one it names: no goal
    id (all zero), or a non-zero stamp."""
    info = request.goal_info
    no_id = not any(bytes(info.goal_id.uuid))
    return no_id or info.stamp.sec != 0 or info.stamp.nanosec != 0


class GuardedActionServer(ActionServer):
    """An :class:`~rclpy.action.ActionServer` that refuses broad cancel requests (see the
    module) unless ``allow_broad``; everything else as rclpy's."""

    def __init__(self, *args: Any, allow_broad: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.allow_broad = allow_broad
        self.refused_cancels = 0

    async def _execute_cancel_request(self, request_header_and_message: Any) -> None:
        request_header, request = request_header_and_message
        if self.allow_broad or not is_broad_cancel(request):
            await super()._execute_cancel_request(request_header_and_message)
            return
        self.refused_cancels += 1
        self._logger.warning(
            "refused a CancelGoal that names no goal or a stamp (it would cancel other "
            "callers' goals); set security.allow_cancel_all to accept it",
            throttle_duration_sec=5.0)
        response = self._action_type.Impl.CancelGoalService.Response(
            return_code=CancelGoal.Response.ERROR_REJECTED)
        try:
            with self._lock:
                self._handle.send_cancel_response(request_header, response)
        except Exception:  # the caller went away: nothing to answer
            return
