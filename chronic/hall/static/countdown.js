// Each countdown ticks down from the seconds the server counted; no build step, no library.
(function () {
  var started = Date.now();
  function tick() {
    document.querySelectorAll(".countdown[data-seconds]").forEach(function (el) {
      var left = Math.max(0, Number(el.dataset.seconds) - Math.floor((Date.now() - started) / 1000));
      var h = Math.floor(left / 3600), m = Math.floor((left % 3600) / 60), s = left % 60;
      el.textContent = left > 0 ? "剩余 " + h + " 小时 " + m + " 分 " + s + " 秒" : "已到期";
    });
  }
  tick();
  setInterval(tick, 1000);
})();
