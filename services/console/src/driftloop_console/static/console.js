// The console's one script: instants in the viewer's zone, and the live event feed.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });

  // Every <time datetime="...Z"> shows in the viewer's zone; the UTC instant stays in its title.
  function localTimes(root) {
    var times = (root || document).querySelectorAll("time[datetime]:not([data-local])");
    for (var i = 0; i < times.length; i++) {
      var element = times[i];
      var instant = new Date(element.getAttribute("datetime"));
      if (isNaN(instant.getTime())) { continue; }
      element.title = element.getAttribute("datetime");
      element.textContent = format.format(instant);
      element.setAttribute("data-local", "true");
    }
    // The same for the instants drawn in a picture (the lineage's SVG text).
    var drawn = (root || document).querySelectorAll("text[data-datetime]:not([data-local])");
    for (var j = 0; j < drawn.length; j++) {
      var label = drawn[j];
      var when = new Date(label.getAttribute("data-datetime"));
      if (isNaN(when.getTime())) { continue; }
      label.textContent = format.format(when);
      label.setAttribute("data-local", "true");
    }
  }
  window.driftloopLocalTimes = localTimes;

  function text(tag, content, className) {
    var element = document.createElement(tag);
    element.textContent = content;
    if (className) { element.className = className; }
    return element;
  }

  // The live feed: each server-sent event becomes the list's first <li data-type=...>.
  function follow(list) {
    var source = new EventSource(list.getAttribute("data-stream"));
    var most = 200;
    source.addEventListener("loop", function (message) {
      var event = JSON.parse(message.data);
      var item = document.createElement("li");
      item.setAttribute("data-type", event.type);
      item.setAttribute("data-id", event.id);
      item.className = "new";
      var when = text("time", event.time);
      when.setAttribute("datetime", event.time);
      item.appendChild(when);
      item.appendChild(document.createTextNode(" "));
      item.appendChild(text("span", event.type, "tag"));
      item.appendChild(document.createTextNode(" "));
      if (event.model) {
        var link = text("a", event.subject || event.model, "subject");
        link.href = "/models/" + encodeURIComponent(event.model);
        item.appendChild(link);
      } else {
        item.appendChild(text("span", event.subject, "subject"));
      }
      item.appendChild(text("div", event.summary, "muted summary"));
      list.insertBefore(item, list.firstChild);
      while (list.children.length > most) { list.removeChild(list.lastChild); }
      localTimes(item);
    });
    window.addEventListener("beforeunload", function () { source.close(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    var feed = document.getElementById("event-feed");
    if (feed && feed.getAttribute("data-stream") && window.EventSource) { follow(feed); }
  });
  document.addEventListener("htmx:afterSwap", function (event) { localTimes(event.target); });
})();
