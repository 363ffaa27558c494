// 立即注册: the cities of the chosen province, and the listed schools matching what is typed.
// The form carries the lookup addresses: data-cities-url, data-schools-url.
(function () {
  "use strict";
  const form = document.getElementById("register-form");
  if (!form) { return; }
  const province = document.getElementById("province"), city = document.getElementById("city");
  const school = document.getElementById("school"), list = document.getElementById("school-list");
  const help = document.getElementById("school-help");
  province.addEventListener("change", async () => {
    city.innerHTML = '<option value="">请选择城市</option>';
    list.innerHTML = "";
    if (!province.value) return;
    const res = await fetch(form.dataset.citiesUrl + "?province=" + encodeURIComponent(province.value));
    for (const c of await res.json()) { const o = document.createElement("option"); o.value = c.code; o.textContent = c.name; city.appendChild(o); }
    search();
  });
  let timer = null, latest = 0;
  async function search() {
    if (!province.value) return;
    const mine = ++latest;
    const url = form.dataset.schoolsUrl + "?province=" + encodeURIComponent(province.value) + "&city=" + encodeURIComponent(city.value) + "&q=" + encodeURIComponent(school.value);
    const data = await (await fetch(url)).json();
    if (mine !== latest) return;  // a newer search has been sent
    list.innerHTML = "";
    for (const name of data.schools) { const o = document.createElement("option"); o.value = name; list.appendChild(o); }
    help.textContent = data.schools.length ? "输入校名中的字词即可搜索本省名单。" : "没有找到匹配的院校。如本校不在名单中，请联系" + data.contact + "。";
  }
  school.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(search, 200); });
  // A field's old error goes once the field is changed (the server checks it again on 注册).
  form.addEventListener("input", clearError);
  form.addEventListener("change", clearError);
  function clearError(event) {
    const box = event.target instanceof Element ? event.target.closest(".field.has-error") : null;
    if (!box) return;
    box.classList.remove("has-error");
    box.querySelectorAll(".error").forEach((e) => e.remove());
  }
  city.addEventListener("change", search);
})();
