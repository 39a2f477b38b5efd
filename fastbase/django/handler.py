"""Django's ASGI handler without a new thread per request and with one thread
hop per run of sync code.

``ASGIHandler`` is Django's own ``django.core.handlers.asgi.ASGIHandler``
(request class, body spooling, response sending, error handling are
inherited, so they follow whichever Django is installed) with these changes
to where and how sync code runs:

- The request's thread-sensitive context runs its sync code on a lane
  borrowed from a pool (``fastbase.django.threads``) instead of a thread
  started for the request and joined by another when it ends. All sync code
  of one request still runs on one thread, in order, never on the loop's
  thread; concurrent requests still run on different threads.
- A run of consecutive ``MiddlewareMixin`` middleware calls its
  ``process_request`` hooks in one hop to that thread and its
  ``process_response`` hooks in one more, instead of one hop per hook;
  consecutive sync ``process_view`` hooks run in one hop too. Exceptions in
  any hook become responses exactly where Django's per-middleware
  ``convert_exception_to_response`` would put them. When the whole chain is
  one such run (``startproject``'s list), ``handle`` also runs
  ``request_started`` and the request's creation in the first hop, which
  takes everything up to the view (and a sync view and what follows it).
- The handler's own hops (``_Hop``) keep ``sync_to_async``'s contract at a
  third of its cost.
- A complete response below 400 is closed (``request_finished``) at the end
  of the request's last hop, before the loop writes it, instead of in a hop
  of its own after (``_close_here``).
- On an HTTP/1 connection a request's lane goes on to the connection's next
  request once the last hop (``response.close()``, ``request_finished``) is
  queued on it: that request's sync code runs after it on the same thread
  (see ``_parked``), one lane per keep-alive connection instead of two.

Async views and async-capable middleware stay on the event loop, as with
Django's handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import os
import threading
from typing import Any

import django
from asgiref.sync import (
    AsyncToSync,
    SyncToAsync,
    ThreadSensitiveContext,
    _restore_context,  # private: see the note on _threadlocal below
    async_to_sync,
    iscoroutinefunction,
    markcoroutinefunction,
    sync_to_async,
)
from django.conf import settings
from django.core import signals
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed, RequestAborted
from django.core.handlers import asgi as django_asgi
from django.core.handlers.base import logger as base_logger
from django.core.handlers.exception import convert_exception_to_response, response_for_exception
from django.http import FileResponse
from django.urls import set_script_prefix, set_urlconf
from django.utils.deprecation import MiddlewareMixin
from django.utils.log import log_response
from django.utils.module_loading import import_string

from ..asgi.cycle import ASGICycle
from .threads import Borrower, Lane, borrower, pool

#: fastbase's handler follows Django 5.0+'s (which cancels a request whose
#: client goes away); on 4.2 runserver serves Django's own.
SUPPORTED = django.VERSION >= (5, 0)

__all__ = ["ASGIHandler", "get_asgi_application", "handler_setting", "swap_in"]

#: settings.FASTBASE_ASGI_HANDLER: which handler ``runserver --asgi`` serves
#: Django with.
HANDLER_CHOICES = ("fastbase", "django")

# The private asgiref names this module leans on; tests/test_django_asgi_handler.py
# fails loudly when one of them changes. ``context_to_thread_executor`` maps a
# ThreadSensitiveContext to the executor its thread-sensitive calls run on.
_context_executors = SyncToAsync.context_to_thread_executor
_current_context = SyncToAsync.thread_sensitive_context
# What sync_to_async sets on its worker thread so async_to_sync there finds
# the loop, and how it moves a context between threads (asgiref 3.13 also
# re-homes Local storage in it).
_threadlocal = SyncToAsync.threadlocal


class _Outcome:
    """Where a hop's result goes: the loop future awaiting it now."""

    __slots__ = ("loop", "waiter", "value", "error", "done", "abandoned")

    def __init__(self, loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[Any]) -> None:
        self.loop = loop
        self.waiter = waiter
        self.value: Any = None
        self.error: BaseException | None = None
        self.done = False
        # Set on the loop when the awaiting task was cancelled and gave up
        # on the outcome: the hop's code stops at its next checkpoint.
        self.abandoned = False

    def publish(self) -> None:
        # The loop may be gone (its request cancelled, the loop closed while
        # this ran on): then nobody waits for the outcome.
        loop = self.loop
        if loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._deliver)
        except RuntimeError:
            pass

    def _deliver(self) -> None:
        self.done = True
        waiter = self.waiter
        if waiter.done():
            return
        if self.error is not None:
            waiter.set_exception(self.error)
        else:
            waiter.set_result(self.value)


def _run_on_lane(
    func: Any,
    args: tuple[Any, ...],
    loop: asyncio.AbstractEventLoop,
    context: contextvars.Context,
    task_context: list[Any],
    outcome: _Outcome,
) -> Any:
    # What SyncToAsync.thread_handler and its ``func`` do on the worker thread.
    _threadlocal.main_event_loop = loop
    _threadlocal.main_event_loop_pid = os.getpid()
    _threadlocal.task_context = task_context

    def run_child() -> Any:
        _restore_context(context)
        return func(*args)

    _lane_state.outcome = outcome
    try:
        outcome.value = context.run(run_child)
    except BaseException as exc:
        outcome.error = exc
    finally:
        _lane_state.outcome = None
    return outcome.publish


_lane_state = threading.local()


class _Abandoned(BaseException):
    """Raised at a checkpoint in a hop its request gave up on (the client
    went away): not an Exception, so no middleware or error handler turns it
    into a response."""


def _checkpoint() -> None:
    """Where Django's handler would have ended one hop and started the next:
    a request cancelled meanwhile (its client went away) goes no further,
    as the next hop would never have been started. (Only on fastbase's
    lanes; under sync_to_async the hop runs to its end.)"""
    outcome = getattr(_lane_state, "outcome", None)
    if outcome is not None and outcome.abandoned:
        raise _Abandoned


class _Hop:
    """``sync_to_async(func, thread_sensitive=True)`` for the handler's own
    calls, cheaper on the request's lane: no concurrent Future chained to an
    asyncio one, no shield, one wake-up of the loop. Same contract: ``func``
    runs on the thread asgiref would pick (the lane), in a copy of the
    caller's context whose changes come back to the caller, with
    ``async_to_sync`` inside it reaching this loop; cancelled, it cancels a
    task ``func`` started through ``async_to_sync`` first. Anywhere else (no
    lane: a parent ``async_to_sync`` thread, Django's tests) it is asgiref's
    own ``sync_to_async``."""

    def __init__(self, func: Any) -> None:
        self.func = func
        self._asgiref = sync_to_async(func, thread_sensitive=True)
        markcoroutinefunction(self)

    def start(self, args: tuple[Any, ...], context: contextvars.Context | None = None) -> Any:
        """Queue ``func(*args)`` on the request's lane now (in a copy of the
        caller's context, or in ``context``) and return what ``_finish``
        awaits; None off a lane (then ``__call__`` is asgiref's)."""
        # The request's Borrower, which ASGIHandler.__call__ sets only when
        # asgiref would send its thread-sensitive calls to its lane: a hop
        # need not ask asgiref (a WeakKeyDictionary and a Local lookup).
        request = borrower.get()
        if request is None or request.running:
            # A call of this request runs on the lane now: perhaps sync code
            # that called async_to_sync and waits for this very code, serving
            # its thread-sensitive calls itself (asgiref's
            # CurrentThreadExecutor), where a call queued behind it would
            # deadlock. asgiref's own path knows where such a call goes. (A
            # call of the previous request on the connection, its
            # request_finished, may still run: this hop queues behind it.)
            return None
        lane = request.lane
        loop = asyncio.get_running_loop()
        if context is None:
            context = contextvars.copy_context()
        task_context: list[Any] = []
        outcome = _Outcome(loop, loop.create_future())
        lane.call(_run_on_lane, self.func, args, loop, context, task_context, outcome)
        return loop, context, task_context, outcome

    async def __call__(self, *args: Any) -> Any:
        started = self.start(args)
        if started is None:
            return await self._asgiref(*args)
        return await _finish(started)


async def _finish(started: Any) -> Any:
    """The awaiting half of a hop _Hop.start queued; the context's changes
    come back to the task awaiting it."""
    loop, context, task_context, outcome = started
    try:
        return await outcome.waiter
    except asyncio.CancelledError:
        if not task_context or outcome.done:
            outcome.abandoned = True
            raise
        # As sync_to_async: cancel what func awaits through async_to_sync;
        # if that task swallows the cancellation, wait for func after all.
        task = task_context[0]
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            outcome.abandoned = True
            raise
        outcome.waiter = loop.create_future()
        if outcome.done:
            outcome._deliver()
        return await outcome.waiter
    finally:
        _restore_context(context)


def _nothing() -> None:
    pass


async def _drain(lane: Lane, through_cancellations: bool = False) -> None:
    """Wait for the calls queued on ``lane`` so far. A cancelled request (its
    server stopping, the loop of one of Django's async tests ending) may
    leave a hop running or queued there, its response.close() and
    request_finished say; Django's handler, whose ThreadSensitiveContext
    joins the request's thread on exit, returns only after it, and so does
    this one: otherwise that request_finished fires later, in whatever runs
    then (in Django's own suite, the next test counted it among its
    signals). A second cancellation stops the wait, as it stops asgiref's,
    unless ``through_cancellations``."""
    try:
        done = asyncio.wrap_future(lane.submit(_nothing))
    except RuntimeError:  # pragma: no cover - the lane was shut down
        return
    if not through_cancellations:
        await done
        return
    while not done.done():
        try:
            await asyncio.shield(done)
        except asyncio.CancelledError:
            continue


async def _finish_last(started: Any) -> Any:
    """``_finish`` for a request's last hop, its response.close() with
    request_finished, queued as soon as the response is out. Cancelled then
    (a server stopping; in Django's async tests, the communicator's clean-up
    and then asyncio.run's, two cancellations in a row), it waits for that
    short hop to end, however often it is cancelled meanwhile, and then lets
    the cancellation go on: request_finished never fires after the request's
    coroutine has returned, in whatever runs next."""
    try:
        return await _finish(started)
    except asyncio.CancelledError:
        loop, _, _, outcome = started
        while not outcome.done:
            # _deliver, which runs on this loop once the hop has returned,
            # sets done and fills the current waiter.
            outcome.waiter = loop.create_future()
            try:
                await outcome.waiter
            except asyncio.CancelledError:
                continue
            except Exception:
                break  # the hop's own error: the cancellation is what goes on
        raise


# Orders a request's last hop deciding to close its response (_close_here)
# against its coroutine, cancelled, deciding whether to wait for that.
_close_lock = threading.Lock()


async def _closing_begun(closed: list[Any] | None) -> None:
    """After the request's processing was cancelled (its hop awaited then
    abandoned): if its last hop has begun closing the response, wait for it,
    however often cancelled meanwhile, as _finish_last waits for a closing
    hop; else that hop never will (it stops at its next checkpoint)."""
    request = borrower.get()
    if closed is None or request is None:
        return
    with _close_lock:
        if not closed:
            return
    await _drain(request.lane, through_cancellations=True)


async def _closing_after(process: asyncio.Task[Any]) -> None:
    """Wait for ``process`` (handle's processing task, just cancelled), then
    for the closing hop it queued if it got that far."""
    while not process.done():
        try:
            await asyncio.wait([process])
        except asyncio.CancelledError:
            continue
    if process.cancelled() or process.exception() is not None:
        return
    started = process.result()[1]
    if started is not None and started is not _CLOSED:
        await _finish_last(started)


# A request's lane, once its last hop (response.close() and request_finished,
# queued as soon as the response is out) is on it, is parked for the next
# request on the same HTTP/1 connection, which the server may start while that
# hop runs: the next request's hops queue behind it on the same thread (often
# found still awake: no second wake-up), and a keep-alive connection holds one
# lane instead of two. Keyed by the connection's (client, server) addresses;
# the request that parked it unparks it when it ends if nobody took it. Event
# loop thread only.
_parked: dict[Any, Lane] = {}
# The connection key of each request context whose lane fastbase's handler
# borrowed (only such a lane is parked).
_connection_keys: dict[Any, Any] = {}


def _connection_key(scope: dict[str, Any]) -> Any:
    if scope.get("http_version") not in ("1.0", "1.1"):
        return None  # HTTP/2's streams share a connection concurrently
    client = scope.get("client")
    server = scope.get("server")
    if not client or not server:
        return None
    try:
        key = (tuple(client), tuple(server))
        hash(key)
    except TypeError:
        return None
    return key


def _park_lane() -> None:
    owner = _current_context.get(None)
    if owner is None:
        return
    key = _connection_keys.get(owner)
    if key is not None:
        lane = _context_executors.get(owner)
        if type(lane) is Lane:
            _parked[key] = lane


def _close(response: Any) -> None:
    response.close()


_close_hop = _Hop(_close)
#: What process() returns in place of a closing hop when the last sync hop
#: closed the response itself (ASGIHandler._close_here).
_CLOSED: Any = object()


def _has_async_receivers(signal: Any, sender: Any) -> bool:
    """Whether ``signal`` has async receivers for ``sender`` (which asend
    would run on the loop, concurrently with the sync ones)."""
    if not signal.receivers:
        return False
    live = signal._live_receivers(sender)
    # Django 5.0+: (sync receivers, async receivers).
    return bool(live[1])


def _plain_mixin(middleware: Any) -> bool:
    """Whether ``middleware`` is a MiddlewareMixin whose async path is the
    mixin's own: sync hooks, each behind its own ``sync_to_async``."""
    cls = type(middleware)
    if not isinstance(middleware, MiddlewareMixin) or not getattr(middleware, "async_mode", False):
        return False
    if cls.__call__ is not MiddlewareMixin.__call__ or getattr(cls, "__acall__", None) is not MiddlewareMixin.__acall__:
        return False
    for hook in ("process_request", "process_response"):
        method = getattr(middleware, hook, None)
        if method is not None and iscoroutinefunction(method):
            return False
    return True


class _MiddlewareRun:
    """Consecutive plain MiddlewareMixin middleware, outermost first, around
    ``inner`` (the async rest of the chain): one hop for their
    ``process_request`` hooks, ``inner`` on the loop, one hop for their
    ``process_response`` hooks."""

    def __init__(self, middleware: list[Any], inner: Any) -> None:
        self.middleware = middleware
        self.inner = inner
        self._requests = _Hop(self.process_requests)
        self._responses = _Hop(self.process_responses)
        markcoroutinefunction(self)

    def __repr__(self) -> str:
        names = ", ".join(type(m).__qualname__ for m in self.middleware)
        return f"<_MiddlewareRun [{names}]>"

    async def __call__(self, request: Any) -> Any:
        middleware = self.middleware
        if any(hasattr(m, "process_request") for m in middleware):
            response, last = await self._requests(request)
        else:
            response, last = None, len(middleware) - 1
        if not response:
            response = await self.inner(request)
            last = len(middleware) - 1
        if last >= 0 and any(hasattr(m, "process_response") for m in middleware[: last + 1]):
            response = await self._responses(request, response, last)
        return response

    def process_requests(self, request: Any) -> tuple[Any, int]:
        # Mirrors MiddlewareMixin.__acall__ around each one, with each
        # middleware's convert_exception_to_response: an exception in a
        # process_request becomes the response its own middleware returns,
        # so its process_response is skipped and the outer ones' run.
        for index, middleware in enumerate(self.middleware):
            if not hasattr(middleware, "process_request"):
                continue
            _checkpoint()
            try:
                response = middleware.process_request(request)
            except Exception as exc:
                return response_for_exception(request, exc), index - 1
            if response:
                return response, index
        return None, len(self.middleware) - 1

    def process_responses(self, request: Any, response: Any, last: int) -> Any:
        for middleware in reversed(self.middleware[: last + 1]):
            if not hasattr(middleware, "process_response"):
                continue
            _checkpoint()
            try:
                response = middleware.process_response(request, response)
            except Exception as exc:
                response = response_for_exception(request, exc)
        return response


class _ViewMiddlewareRun:
    """Consecutive sync ``process_view`` hooks in one hop; the first truthy
    result wins, as in BaseHandler._get_response_async's loop."""

    def __init__(self, methods: list[Any]) -> None:
        self.methods = methods
        self._run = _Hop(self._process_views)
        markcoroutinefunction(self)

    def __repr__(self) -> str:
        return f"<_ViewMiddlewareRun {self.methods!r}>"

    async def __call__(self, request: Any, callback: Any, args: Any, kwargs: Any) -> Any:
        return await self._run(request, callback, args, kwargs)

    def _process_views(self, request: Any, callback: Any, args: Any, kwargs: Any) -> Any:
        response = None
        for method in self.methods:
            _checkpoint()
            response = method(request, callback, args, kwargs)
            if response:
                break
        return response


class ASGIHandler(django_asgi.ASGIHandler):
    """Django's ASGIHandler, its sync code on pooled request threads, one
    hop per run of sync middleware.

    When every middleware is a plain MiddlewareMixin (startproject's list) and
    the view, template-response and exception hooks are sync, a request takes
    one hop for everything from the first ``process_request`` to the last
    ``process_response`` with a sync view, and two around an async view
    (which runs on the loop); see ``get_response_async``.
    """

    # The whole chain as one _MiddlewareRun with the view, template-response
    # hooks as plain sync methods, when load_middleware found that shape.
    _whole_run: _MiddlewareRun | None = None
    _view_methods: list[Any] = []
    _template_methods: list[Any] = []

    def __init__(self) -> None:
        if not SUPPORTED:
            raise ImproperlyConfigured(f"fastbase.django.ASGIHandler needs Django 5.0 or later (this is {django.get_version()}).")
        super().__init__()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError("Django can only handle ASGI/HTTP connections, not %s." % scope["type"])
        # The request's ThreadSensitiveContext, its sync code sent to a
        # pooled lane. Nested in another thread-sensitive context (one a
        # wrapping app opened), the outer context keeps its thread, as under
        # Django's handler.
        context = ThreadSensitiveContext()
        await context.__aenter__()
        lane = None
        key = None
        lane_token = None
        # Under a parent async_to_sync this context can see (a sync caller's
        # async_to_sync(app)) asgiref sends thread-sensitive calls to that
        # caller's thread whatever the context's executor is: no lane then.
        # (Django's async tests run the app through ApplicationCommunicator,
        # in a fresh context: lanes, as on a server.)
        if _current_context.get(None) is context and getattr(AsyncToSync.executors, "current", None) is None:
            key = _connection_key(scope)
            # The lane the previous request on this connection left parked
            # (its request_finished may still be queued on it: ours runs
            # after, on the same thread), else one from the pool.
            lane = _parked.pop(key, None) if key is not None else None
            if lane is None:
                lane = pool.acquire()
            lane.holders += 1
            _context_executors[context] = lane
            lane_token = borrower.set(Borrower(lane))
            if key is not None:
                _connection_keys[context] = key
        try:
            await self.handle(scope, receive, send)
        except asyncio.CancelledError:
            if lane is not None:
                await _drain(lane)
            raise
        finally:
            if lane is not None:
                if lane_token is not None:
                    borrower.reset(lane_token)
                # Out before asgiref's exit, which would shut it down: a task
                # that outlives the request and calls sync code later gets a
                # fresh executor from asgiref, as under Django's handler.
                if _context_executors.get(context) is lane:
                    del _context_executors[context]
                if key is not None:
                    _connection_keys.pop(context, None)
                    if _parked.get(key) is lane:
                        del _parked[key]  # no next request came for it
                lane.holders -= 1
                if not lane.holders:
                    pool.release(lane)
            await context.__aexit__(None, None, None)

    def load_middleware(self, is_async: bool = False) -> None:
        """BaseHandler.load_middleware's chain, same instances, same order,
        same adaptation rules, with runs of plain MiddlewareMixin middleware
        collapsed (see _MiddlewareRun)."""
        self._whole_run = None
        if not is_async:
            super().load_middleware(is_async=False)
            return
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        view_methods: list[Any] = []
        template_methods: list[Any] = []
        all_plain = True

        handler: Any = convert_exception_to_response(self._get_response_async)
        handler_is_async = True
        innermost = handler
        run: list[Any] = []
        run_inner: Any = None
        for middleware_path in reversed(settings.MIDDLEWARE):
            middleware = import_string(middleware_path)
            middleware_can_sync = getattr(middleware, "sync_capable", True)
            middleware_can_async = getattr(middleware, "async_capable", False)
            if not middleware_can_sync and not middleware_can_async:
                raise RuntimeError("Middleware %s must have at least one of sync_capable/async_capable set to True." % middleware_path)
            elif not handler_is_async and middleware_can_sync:
                middleware_is_async = False
            else:
                middleware_is_async = middleware_can_async
            try:
                adapted_handler = self.adapt_method_mode(
                    middleware_is_async,
                    handler,
                    handler_is_async,
                    debug=settings.DEBUG,
                    name="middleware %s" % middleware_path,
                )
                mw_instance = middleware(adapted_handler)
            except MiddlewareNotUsed as exc:
                if settings.DEBUG:
                    if str(exc):
                        base_logger.debug("MiddlewareNotUsed(%r): %s", middleware_path, exc)
                    else:
                        base_logger.debug("MiddlewareNotUsed: %r", middleware_path)
                continue
            else:
                handler = adapted_handler

            if mw_instance is None:
                raise ImproperlyConfigured("Middleware factory %s returned None." % middleware_path)

            if hasattr(mw_instance, "process_view"):
                view_methods.insert(0, mw_instance.process_view)
            if hasattr(mw_instance, "process_template_response"):
                template_methods.append(mw_instance.process_template_response)
                self._template_response_middleware.append(
                    self.adapt_method_mode(is_async, mw_instance.process_template_response),
                )
            if hasattr(mw_instance, "process_exception"):
                # Django's exception stack is sync; adapt it that way too.
                self._exception_middleware.append(
                    self.adapt_method_mode(False, mw_instance.process_exception),
                )

            if middleware_is_async and _plain_mixin(mw_instance):
                if not run:
                    run_inner = handler
                run.insert(0, mw_instance)
                handler = convert_exception_to_response(_MiddlewareRun(list(run), run_inner))
            else:
                run = []
                all_plain = False
                handler = convert_exception_to_response(mw_instance)
            handler_is_async = middleware_is_async

        self._view_middleware = self._view_runs(view_methods)
        if all_plain and not any(iscoroutinefunction(m) for m in view_methods + template_methods):
            self._whole_run = _MiddlewareRun(run, innermost)
            self._view_methods = view_methods
            self._template_methods = template_methods
            self._enter = _Hop(self._enter_sync)
            self._begin = _Hop(self._begin_sync)
            self._leave = _Hop(self._leave_sync)
            self._leave_close = _Hop(self._leave_close_sync)
        # Adapt the top of the stack, if needed.
        handler = self.adapt_method_mode(is_async, handler, handler_is_async)
        self._middleware_chain = handler

    def _view_runs(self, methods: list[Any]) -> list[Any]:
        """process_view hooks as BaseHandler adapts them, consecutive sync
        ones joined into one hop."""
        adapted: list[Any] = []
        run: list[Any] = []
        for method in methods:
            if iscoroutinefunction(method):
                if run:
                    adapted.append(self._one_view_hop(run))
                    run = []
                adapted.append(method)
            else:
                run.append(method)
        if run:
            adapted.append(self._one_view_hop(run))
        return adapted

    def _one_view_hop(self, methods: list[Any]) -> Any:
        if len(methods) == 1:
            return self.adapt_method_mode(True, methods[0])
        return _ViewMiddlewareRun(methods)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's ASGIHandler.handle; with the whole chain one run of plain
        middleware and only sync request_started receivers, the signal and
        the request's creation join the first hop (see _begin_sync)."""
        if self._whole_run is None or _has_async_receivers(signals.request_started, self.__class__):
            return await super().handle(scope, receive, send)
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        with contextlib.closing(body_file):
            set_script_prefix(django_asgi.get_script_prefix(scope))
            # What Django's close hop, awaited here, would run in.
            closing = contextvars.copy_context()

            # On a lane, a complete response is closed at the end of the
            # request's last sync hop (_close_here), which records it here.
            closed: list[Any] | None = [] if borrower.get() is not None else None

            async def process() -> Any:
                request, response, view = await self._begin(scope, body_file, closed)
                if request is not None:
                    response = await self._finish_response(request, response, view, closed=closed)
                try:
                    await self.send_response(response, send)
                except asyncio.CancelledError:
                    # The client went away while the response was going out.
                    pass
                if closed:
                    _park_lane()
                    error, closed[0] = closed[0], None
                    if error is not None:
                        # As from Django's closing after the response is out.
                        raise error
                    return response, _CLOSED
                # The response is out: queue its closing (request_finished)
                # now, as Django would next on this thread, so that it is on
                # the lane before the next request on this connection can be
                # (see _parked); handle awaits it.
                started = _close_hop.start((response,), closing)
                if started is not None:
                    _park_lane()
                return response, started

            cycle = getattr(receive, "__self__", None)
            if type(cycle) is ASGICycle and not cycle.disconnected:
                # fastbase's own server says when the client goes away: the
                # processing runs in this task, cancelled if it does, with no
                # listener task and no asyncio.wait (a tenth of the loop's
                # work for an async view).
                await self._process_here(cycle, process, closed)
                return
            # As Django's handler: listen for the client going away while the
            # request is processed, and cancel the processing if it does.
            tasks = [
                asyncio.create_task(self.listen_for_disconnect(receive)),
                asyncio.create_task(process()),
            ]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:
                # Stopped from outside (a server stopping, the loop of one of
                # Django's async tests ending): the processing stops too, but
                # a closing hop it queued (its response was out) is waited
                # for, as _finish_last waits for it.
                for task in tasks:
                    task.cancel()
                await _closing_after(tasks[1])
                await _closing_begun(closed)
                raise
            for task in tasks:
                if task.done():
                    # The listener ends with RequestAborted on every request
                    # (the server reports the disconnect once the response is
                    # out). Read it with exception(), not result(): re-raised
                    # here, its traceback would take in this frame, which holds
                    # the task holding it, a cycle per request that only the
                    # cyclic GC frees (measured: ~90 objects a request, and
                    # full collections a third of the server's CPU under load).
                    if not task.cancelled() and isinstance(task.exception(), RequestAborted):
                        continue
                    task.result()
                else:
                    task.cancel()
                    try:
                        await task
                    except asyncio.CancelledError:
                        pass
            try:
                response, started = tasks[1].result()
            except asyncio.CancelledError:
                await self._finished_unless_closed(closed)
            else:
                if started is None:
                    await _close_hop(response)
                elif started is not _CLOSED:
                    await _finish_last(started)

    async def _finished_unless_closed(self, closed: list[Any] | None) -> None:
        """request_finished for a request whose processing was cancelled,
        unless its last sync hop closed the response (and so sent it) before
        the cancellation: that hop, still running maybe, is waited for first
        (Django's handler queues the signal behind it on the same thread)."""
        if closed is not None:
            request = borrower.get()
            if request is not None:
                await _drain(request.lane)
            if closed:
                return
        await signals.request_finished.asend(sender=self.__class__)

    async def _process_here(self, cycle: ASGICycle, process: Any, closed: list[Any] | None = None) -> None:
        """handle's processing on fastbase's server: ``process()`` in this
        task, which the cycle cancels if the client goes away before the
        response is complete (Django's handler cancels its processing task
        then); request_finished follows as in Django's handler either way."""
        task = asyncio.current_task()
        assert task is not None
        gone = []

        def client_gone() -> None:
            gone.append(True)
            task.cancel()

        cycle.on_client_gone = client_gone
        try:
            response, started = await process()
        except asyncio.CancelledError:
            if not gone:
                # The server is stopping the app, not the client leaving.
                await _closing_begun(closed)
                raise
            response = started = None
        finally:
            cycle.on_client_gone = None
            if gone:
                # The cancellation was ours and is handled here (it may have
                # ended only the sending, which process() absorbs).
                uncancel = getattr(task, "uncancel", None)
                if uncancel is not None:
                    uncancel()
            client_gone = None  # type: ignore[assignment]  # no cycle through this frame
        if response is None:
            await self._finished_unless_closed(closed)
        elif started is None:
            await _close_hop(response)
        elif started is not _CLOSED:
            await _finish_last(started)

    def _begin_sync(self, scope: dict[str, Any], body_file: Any, closed: list[Any] | None = None) -> tuple[Any, Any, Any]:
        """request_started, the request, and _enter_sync: (request, response,
        async view or None); (None, error response, None) for a request
        Django cannot build. With ``closed``, a final response is closed
        here (_close_here)."""
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            return None, error_response, None
        set_urlconf(settings.ROOT_URLCONF)
        response, view = self._enter_sync(request)
        if view is None and closed is not None:
            self._close_here(request, response, closed)
        return request, response, view

    def _close_here(self, request: Any, response: Any, closed: list[Any]) -> None:
        """At the end of a request's last sync hop, close a complete
        in-memory response (not streaming, and below 400: Django logs those
        on the loop first) on this thread now, request_finished with it,
        where Django closes it in a hop of its own once the loop has written
        it: one round trip to the request's thread and back fewer, the
        response written after its request_finished instead of before. What
        _finish_response would add to the response is added here; an error
        from the closing is raised once the response is out, as Django's
        would be."""
        if response.streaming or response.status_code >= 400:
            return
        with _close_lock:
            # Not if the request's coroutine has given up on this hop; once
            # recorded, it waits for the closing (_closing_begun).
            _checkpoint()
            closed.append(None)
        response._resource_closers.append(request.close)
        response._handler_class = self.__class__
        try:
            response.close()
        except Exception as exc:
            closed[0] = exc

    async def get_response_async(self, request: Any) -> Any:
        """BaseHandler.get_response_async; with the whole chain one run of
        plain middleware, its sync parts in one hop before the view (and the
        view itself when sync) and one after an async view."""
        if self._whole_run is None:
            return await super().get_response_async(request)
        set_urlconf(settings.ROOT_URLCONF)
        response, view = await self._enter(request)
        return await self._finish_response(request, response, view, run_get_response=False)

    async def _finish_response(
        self, request: Any, response: Any, view: Any, run_get_response: bool = True, closed: list[Any] | None = None
    ) -> Any:
        """The async view if there is one, then what get_response_async and
        run_get_response do to a response. With ``closed``, the hop after
        the view closes a complete response (_close_here)."""
        if view is not None:
            wrapped_callback, callback, callback_args, callback_kwargs = view
            try:
                response = await wrapped_callback(request, *callback_args, **callback_kwargs)
            except Exception as exc:
                error: Exception | None = exc
                response = None
            else:
                error = None
            if closed is None:
                response = await self._leave(request, response, callback, error)
            else:
                response = await self._leave_close(request, response, callback, error, closed)
            error = None
        if closed:
            return response  # closed, with all that is added below
        response._resource_closers.append(request.close)
        if response.status_code >= 400:
            await sync_to_async(log_response, thread_sensitive=False)(
                "%s: %s",
                response.reason_phrase,
                request.path,
                response=response,
                request=request,
            )
        if run_get_response:
            response._handler_class = self.__class__
            if isinstance(response, FileResponse):
                response.block_size = self.chunk_size
        return response

    def _enter_sync(self, request: Any) -> tuple[Any, Any]:
        """Every process_request, URL resolution, every process_view and a
        sync view with what follows it; stops before an async view and
        returns what is needed to call it."""
        run = self._whole_run
        assert run is not None
        response, last = run.process_requests(request)
        if response:
            return run.process_responses(request, response, last), None
        # What follows is _get_response_async, its exceptions turned into
        # responses as its convert_exception_to_response wrapper does.
        try:
            callback, callback_args, callback_kwargs = self.resolve_request(request)
            response = None
            for method in self._view_methods:
                _checkpoint()
                response = method(request, callback, callback_args, callback_kwargs)
                if response:
                    break
            if response is None:
                wrapped_callback = self.make_view_atomic(callback)
                if iscoroutinefunction(wrapped_callback):
                    return None, (wrapped_callback, callback, callback_args, callback_kwargs)
                _checkpoint()
                try:
                    response = wrapped_callback(request, *callback_args, **callback_kwargs)
                except Exception as exc:
                    _checkpoint()
                    response = self.process_exception_by_middleware(exc, request)
                    if response is None:
                        raise
            _checkpoint()
            response = self._after_view(request, response, callback)
        except Exception as exc:
            response = response_for_exception(request, exc)
        return run.process_responses(request, response, len(run.middleware) - 1), None

    def _leave_sync(self, request: Any, response: Any, callback: Any, error: Exception | None) -> Any:
        """After an async view: exception middleware if it raised, template
        responses, then every process_response."""
        run = self._whole_run
        assert run is not None
        try:
            if error is not None:
                # Inside an except block, as sync_to_async runs the exception
                # middleware: sys.exc_info() there is the view's exception.
                try:
                    raise error
                except Exception:
                    response = self.process_exception_by_middleware(error, request)
                if response is None:
                    raise error
            response = self._after_view(request, response, callback)
        except Exception as exc:
            response = response_for_exception(request, exc)
        finally:
            error = None
        return run.process_responses(request, response, len(run.middleware) - 1)

    def _leave_close_sync(self, request: Any, response: Any, callback: Any, error: Exception | None, closed: list[Any]) -> Any:
        """_leave_sync, then _close_here: the last sync hop of a request
        with an async view."""
        response = self._leave_sync(request, response, callback, error)
        error = None
        self._close_here(request, response, closed)
        return response

    def _after_view(self, request: Any, response: Any, callback: Any) -> Any:
        self.check_response(response, callback)
        if hasattr(response, "render") and callable(response.render):
            for method in self._template_methods:
                _checkpoint()
                response = method(request, response)
                self.check_response(
                    response,
                    method,
                    name="%s.process_template_response" % (method.__self__.__class__.__name__,),
                )
            _checkpoint()
            try:
                if iscoroutinefunction(response.render):
                    # On the loop, as Django awaits it there.
                    response = async_to_sync(response.render)()
                else:
                    response = response.render()
            except Exception as exc:
                _checkpoint()
                response = self.process_exception_by_middleware(exc, request)
                if response is None:
                    raise
        if asyncio.iscoroutine(response):
            raise RuntimeError("Response is still a coroutine.")
        return response


def get_asgi_application() -> ASGIHandler:
    """django.core.asgi.get_asgi_application, returning fastbase's handler."""
    django.setup(set_prefix=False)
    return ASGIHandler()


def handler_setting() -> str:
    """settings.FASTBASE_ASGI_HANDLER: "fastbase" (the default) or "django"."""
    choice = getattr(settings, "FASTBASE_ASGI_HANDLER", "fastbase")
    if choice not in HANDLER_CHOICES:
        raise ImproperlyConfigured(f"FASTBASE_ASGI_HANDLER must be one of {', '.join(map(repr, HANDLER_CHOICES))}, not {choice!r}.")
    return choice


def swap_in(application: Any) -> Any:
    """``application`` with Django's stock ASGIHandler replaced by fastbase's:
    the application itself, or the ``"http"`` entry of a Channels
    ``ProtocolTypeRouter``. Anything else (a subclass, a wrapper) is served
    as it is."""
    if not SUPPORTED:
        return application
    if type(application) is django_asgi.ASGIHandler:
        return ASGIHandler()
    mapping = getattr(application, "application_mapping", None)
    if isinstance(mapping, dict) and type(mapping.get("http")) is django_asgi.ASGIHandler:
        mapping["http"] = ASGIHandler()
    return application
