// The 复制 buttons beside judges' links (shown only when this script runs): copy the link
// without it ever leaving the page. Without JavaScript the read-only field can be selected.
(function () {
  var buttons = document.querySelectorAll("button.copy-link");
  Array.prototype.forEach.call(buttons, function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-target"));
      field.focus();
      field.select();
      var done = function () { button.textContent = "已复制"; };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          if (document.execCommand("copy")) { done(); }
        });
      } else if (document.execCommand("copy")) {
        done();
      }
    });
  });
})();
